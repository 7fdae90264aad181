"""Where moto's Step Functions interpreter differs from AWS, the emulator bridges it here.

Each bridge makes moto do what AWS documents, never fakes a result:

- The optimized `states:startExecution` integration takes `StateMachineArn`/`Input`/`Name`
  (PascalCase) and AWS maps them onto the Step Functions API, whose botocore model is
  camelCase (`stateMachineArn`, ...). moto passes them through unchanged and botocore
  refuses them; the bridge maps them as AWS does, and maps the result back to the
  integration's documented `ExecutionArn`/`StartDate`.
- DynamoDB writes are atomic with respect to each other. moto 5.2.5 rolls a cancelled
  `TransactWriteItems` back by restoring a snapshot of the whole table taken when the
  transaction started, so a lock another execution released in between comes back to
  life, owned by a finished execution, and every waiter runs out of retries. The bridge
  serializes moto's DynamoDB writes, as DynamoDB's own item-level atomicity would.
- moto authorizes `GET ?encryption` (GetBucketEncryption) as `s3:ListBucket`, its default
  for an unmapped bucket GET; AWS authorizes it as `s3:GetEncryptionConfiguration`
  (and the PUT as `s3:PutEncryptionConfiguration`). The bridge adds both to moto's map.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn as sfn_task,
)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


@contextmanager
def bridged() -> Iterator[None]:
    with ExitStack() as stack:
        stack.enter_context(_sfn_start_execution_casing())
        stack.enter_context(_atomic_dynamodb_writes())
        stack.enter_context(_s3_encryption_action_names())
        yield


@contextmanager
def _s3_encryption_action_names() -> Iterator[None]:
    from moto.s3.responses import ACTION_MAP

    bucket = ACTION_MAP["BUCKET"]
    added = {("GET", "encryption"): "GetEncryptionConfiguration", ("PUT", "encryption"): "PutEncryptionConfiguration"}
    saved = {key: bucket[key[0]].get(key[1]) for key in added}
    for (method, query), action in added.items():
        bucket[method][query] = action
    try:
        yield
    finally:
        for (method, query), previous in saved.items():
            if previous is None:
                bucket[method].pop(query, None)
            else:
                bucket[method][query] = previous


@contextmanager
def _atomic_dynamodb_writes() -> Iterator[None]:
    guard = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in _DYNAMODB_WRITES}

    def serialized(original: Any) -> Any:
        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            with guard:
                return original(self, *args, **kwargs)

        return write

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, serialized(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


@contextmanager
def _sfn_start_execution_casing() -> Iterator[None]:
    cls = sfn_task.StateTaskServiceSfn
    original = cls._normalise_parameters
    original_response = cls._eval_service_task

    def normalise(self: Any, parameters: dict[str, Any], *args: Any) -> None:
        original(self, parameters, *args)
        for key in [k for k in parameters if k[:1].isupper()]:
            parameters[_camel(key)] = parameters.pop(key)

    def evaluate(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original_response(self, env, *args, **kwargs)
        if self._get_boto_service_action() == "start_execution" and env.stack and isinstance(env.stack[-1], dict):
            result = env.stack.pop()
            env.stack.append({_pascal(k): v for k, v in result.items()})

    cls._normalise_parameters = normalise  # type: ignore[method-assign]
    cls._eval_service_task = evaluate  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls._normalise_parameters = original  # type: ignore[method-assign]
        cls._eval_service_task = original_response  # type: ignore[method-assign]
