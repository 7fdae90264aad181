"""Where moto's Step Functions interpreter differs from AWS, the emulator bridges it here.

Each bridge makes moto do what AWS documents, never fakes a result:

- The optimized `states:startExecution` integration takes `StateMachineArn`/`Input`/`Name`
  (PascalCase) and AWS maps them onto the Step Functions API, whose botocore model is
  camelCase (`stateMachineArn`, ...). moto passes them through unchanged and botocore
  refuses them; the bridge maps them as AWS does, and maps the result back to the
  integration's documented `ExecutionArn`/`StartDate`.
- The `.sync` and `.sync:2` integrations return (and, when the child fails, put in the
  `Cause` of `States.TaskFailed`) the child's DescribeExecution in PascalCase on AWS:
  `ExecutionArn`, `Input`, `Output`, `Status`, `Error`, `Cause`, `StartDate` (epoch
  milliseconds), `InputDetails: {Included}`, ... moto keeps botocore's camelCase, so an ASL
  that reads `$.error`/`$.cause` of the description works here and falls through on AWS.
  The bridge renders them as AWS does.
- A Distributed Map's `ResultWriter` (`arn:aws:states:::s3:putObject`): moto 5.2.5 writes
  only an empty `manifest.json` and drops the results. AWS writes every child execution,
  grouped by status, to `<Prefix>/<map run id>/SUCCEEDED_<n>.json` / `FAILED_<n>.json`
  (a JSON array of `{ExecutionArn, Input, InputDetails, Name, Output, OutputDetails,
  RedriveCount, RedriveStatus, StartDate, StateMachineArn, Status, StopDate}`, with
  `Error`/`Cause` instead of `Output` for a failed one; Transformation NONE, the default
  with an S3 export), lists them with their sizes in the manifest's `ResultFiles`, and the
  state's output is `{MapRunArn, ResultWriterDetails: {Bucket, Key}}`. The bridge writes
  them so. The child executions' ARNs and names are the emulator's (moto runs map items
  in-process, not as executions). moto also evaluates the ResultWriter's `Parameters`
  paths against the Map's results; AWS evaluates them against the state's input.
- DynamoDB writes are atomic with respect to each other. moto 5.2.5 rolls a cancelled
  `TransactWriteItems` back by restoring a snapshot of the whole table taken when the
  transaction started, so a lock another execution released in between comes back to
  life, owned by a finished execution, and every waiter runs out of retries. The bridge
  serializes moto's DynamoDB writes, as DynamoDB's own item-level atomicity would.
- Secrets Manager requests are atomic on AWS. moto 5.2.5 looks a secret up by scanning its
  store's values, so a CreateSecret of another execution (twenty registrations at once each
  create one) breaks a concurrent read with "dictionary changed size during iteration". The
  bridge serializes moto's Secrets Manager backend, one request at a time.
- Every AWS request is atomic on AWS. moto's backends keep plain dicts that a request
  iterates (IAM's account summary and policy listings, S3's listings, the request's own
  authorization reading IAM) while another thread's request inserts into them: "dictionary
  changed size during iteration", seen as a failed onboarding one run in a few hundred under
  load. The bridge runs each request to a data service (everything but Lambda's and Step
  Functions' own APIs, whose Invoke and executions run for long) whole — authorization,
  backend and rendering — one at a time, as AWS's per-request atomicity would.
- moto authorizes `GET ?encryption` (GetBucketEncryption) as `s3:ListBucket`, its default
  for an unmapped bucket GET; AWS authorizes it as `s3:GetEncryptionConfiguration`
  (and the PUT as `s3:PutEncryptionConfiguration`). The bridge adds both to moto's map.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from moto.core.responses import BaseResponse
from moto.dynamodb.models import DynamoDBBackend
from moto.s3.responses import S3Response
from moto.secretsmanager.models import SecretsManagerBackend
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as distributed_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import result_writer_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3 as result_writer_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn as sfn_task,
)
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_DYNAMODB_READS = ("get_item",)


@contextmanager
def bridged() -> Iterator[None]:
    with ExitStack() as stack:
        stack.enter_context(_sfn_start_execution_casing())
        stack.enter_context(_sfn_sync_output_casing())
        stack.enter_context(_result_writer())
        stack.enter_context(_atomic_dynamodb_writes())
        stack.enter_context(_atomic_secrets_manager())
        stack.enter_context(_atomic_requests())
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

    def snapshot(original: Any) -> Any:
        # A read sees an item whole: moto renders it after returning, while another thread's
        # UpdateItem may be adding attributes to it (AWS reads are atomic per item).
        def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            with guard:
                return copy.deepcopy(original(self, *args, **kwargs))

        return read

    reads = {name: getattr(DynamoDBBackend, name) for name in _DYNAMODB_READS}
    for name, original in originals.items():
        setattr(DynamoDBBackend, name, serialized(original))
    for name, original in reads.items():
        setattr(DynamoDBBackend, name, snapshot(original))
    try:
        yield
    finally:
        for name, original in {**originals, **reads}.items():
            setattr(DynamoDBBackend, name, original)


#: Response modules whose requests run for long (Lambda Invoke runs a handler that makes
#: requests of its own; Step Functions starts and describes executions): never serialized.
_LONG_REQUESTS = ("moto.awslambda", "moto.awslambda_simple", "moto.stepfunctions")


@contextmanager
def _atomic_requests() -> Iterator[None]:
    """Each request to a data service runs whole, one at a time (re-entrant for nested calls)."""
    guard = threading.RLock()
    patched = [(BaseResponse, "_dispatch"), (S3Response, "bucket_response"), (S3Response, "key_response")]
    originals = [(cls, name, cls.__dict__[name]) for cls, name in patched]

    def serialized(original: Any) -> Any:
        def request(self: Any, *args: Any, **kwargs: Any) -> Any:
            if type(self).__module__.startswith(_LONG_REQUESTS):
                return original(self, *args, **kwargs)
            with guard:
                return original(self, *args, **kwargs)

        return request

    for cls, name, original in originals:
        setattr(cls, name, serialized(original))
    try:
        yield
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


@contextmanager
def _atomic_secrets_manager() -> Iterator[None]:
    guard = threading.RLock()
    originals = {
        name: method
        for name, method in vars(SecretsManagerBackend).items()
        if callable(method) and not name.startswith("_")
    }

    def serialized(original: Any) -> Any:
        def request(self: Any, *args: Any, **kwargs: Any) -> Any:
            with guard:
                return original(self, *args, **kwargs)

        return request

    for name, original in originals.items():
        setattr(SecretsManagerBackend, name, serialized(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(SecretsManagerBackend, name, original)


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


def aws_describe_execution(described: dict[str, Any]) -> dict[str, Any]:
    """A DescribeExecution response as the `.sync`/`.sync:2` integrations render it on AWS."""
    rendered: dict[str, Any] = {}
    for key, value in described.items():
        if isinstance(value, datetime.datetime):
            value = int(value.timestamp() * 1000)
        elif isinstance(value, dict) and key.endswith("Details"):
            value = {_pascal(k): v for k, v in value.items()}
        rendered[_pascal(key)] = value
    return rendered


def _aws_cased(resolver: Callable[[], Any] | None) -> Callable[[], Any] | None:
    if resolver is None:
        return None

    def resolve() -> Any:
        try:
            result = resolver()
        except FailureEventException as exc:
            details = exc.failure_event.event_details or {}
            failed = details.get("taskFailedEventDetails")
            if failed and isinstance(failed.get("cause"), str):
                try:
                    described = json.loads(failed["cause"])
                except json.JSONDecodeError:
                    raise exc from None
                if isinstance(described, dict) and "executionArn" in described:
                    failed["cause"] = json.dumps(aws_describe_execution(described), separators=(",", ":"))
            raise
        return aws_describe_execution(result) if isinstance(result, dict) else result

    return resolve


@contextmanager
def _sfn_sync_output_casing() -> Iterator[None]:
    cls = sfn_task.StateTaskServiceSfn
    originals = {name: getattr(cls, name) for name in ("_build_sync_resolver", "_build_sync2_resolver")}

    def wrapped(original: Any) -> Any:
        def build(self: Any, *args: Any, **kwargs: Any) -> Callable[[], Any] | None:
            return _aws_cased(original(self, *args, **kwargs))

        return build

    for name, original in originals.items():
        setattr(cls, name, wrapped(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(cls, name, original)


#: AWS splits a status's results into files of at most 5 GB; far beyond any file here.
RESULT_FILE_MAX_BYTES = 5 * 1024**3


def _now_millis() -> int:
    return int(datetime.datetime.now(tz=datetime.UTC).timestamp() * 1000)


@contextmanager
def _result_writer() -> Iterator[None]:
    worker_cls = distributed_worker.DistributedItemProcessorWorker
    writer_cls = result_writer_s3.ResourceEvalS3
    original_eval_job = worker_cls._eval_job
    original_put = writer_cls._handle_put_object
    guard = threading.Lock()

    def eval_job(self: Any, env: Any, job: Any) -> None:
        started = _now_millis()
        original_eval_job(self, env, job)
        record = self._map_run_record
        state = env.program_state()
        entry: dict[str, Any] = {
            "index": job.job_index,
            "input": job.job_input,
            "start": started,
            "stop": _now_millis(),
        }
        if isinstance(state, ProgramError) or job.job_output is None:
            error = getattr(state, "error", None) or {}
            entry.update(status="FAILED", error=error.get("error"), cause=error.get("cause"))
        else:
            entry.update(status="SUCCEEDED", output=job.job_output)
        with guard:
            if not hasattr(record, "atc_results"):
                record.atc_results = []
            record.atc_results.append(entry)

    def put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack[-1]
        record = env.map_run_record_pool_manager.get_all()[-1]
        original_put(env, resource_runtime_part, state_credentials)
        written = env.stack[-1]
        s3 = writer_cls._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
        manifest_key = written["ResultWriterDetails"]["Key"]
        folder = manifest_key.rsplit("/", 1)[0]
        bucket = parameters["Bucket"]
        results = sorted(getattr(record, "atc_results", []), key=lambda e: e["index"])
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status in ("SUCCEEDED", "FAILED"):
            rows = [_result_entry(record, e) for e in results if e["status"] == status]
            for number, body in enumerate(_result_files(rows)):
                key = f"{folder}/{status}_{number}.json"
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                files[status].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn, "ResultFiles": files}
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest, indent=2).encode())

    decl_cls = result_writer_decl.ResultWriter
    original_body = decl_cls._eval_body

    def eval_body(self: Any, env: Any) -> None:
        depth = len(env.stack)
        env.stack.append(env.states.get_input())
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
        del env.stack[depth:]
        env.stack.append(parameters)
        self.resource_eval.eval_resource(env=env)

    worker_cls._eval_job = eval_job  # type: ignore[method-assign]
    writer_cls._handle_put_object = staticmethod(put_object)  # type: ignore[assignment]
    decl_cls._eval_body = eval_body  # type: ignore[method-assign]
    try:
        yield
    finally:
        worker_cls._eval_job = original_eval_job  # type: ignore[method-assign]
        writer_cls._handle_put_object = staticmethod(original_put)  # type: ignore[assignment]
        decl_cls._eval_body = original_body  # type: ignore[method-assign]


def _result_entry(record: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """One child execution as AWS's ResultWriter writes it (Transformation NONE)."""
    run = record.map_run_arn
    name = f"{run.rsplit(':', 1)[-1][:8]}-{entry['index']:06d}"
    execution_arn = run.replace(":mapRun:", ":execution:").rsplit(":", 1)[0] + f":{name}"
    result: dict[str, Any] = {
        "ExecutionArn": execution_arn,
        "Input": json.dumps(entry["input"], separators=(",", ":")),
        "InputDetails": {"Included": True},
        "Name": name,
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE" if entry["status"] == "SUCCEEDED" else "REDRIVABLE",
        "StartDate": entry["start"],
        "StateMachineArn": run.replace(":mapRun:", ":stateMachine:").rsplit(":", 1)[0],
        "Status": entry["status"],
        "StopDate": entry["stop"],
    }
    if entry["status"] == "SUCCEEDED":
        result["Output"] = json.dumps(entry["output"], separators=(",", ":"))
        result["OutputDetails"] = {"Included": True}
    else:
        result["Error"] = entry.get("error")
        result["Cause"] = entry.get("cause")
    return result


def _result_files(rows: list[dict[str, Any]]) -> Iterator[bytes]:
    """JSON arrays of at most RESULT_FILE_MAX_BYTES each."""
    batch: list[bytes] = []
    size = 2
    for row in rows:
        encoded = json.dumps(row, separators=(",", ":")).encode()
        if batch and size + len(encoded) + 1 > RESULT_FILE_MAX_BYTES:
            yield b"[" + b",".join(batch) + b"]"
            batch, size = [], 2
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        yield b"[" + b",".join(batch) + b"]"
