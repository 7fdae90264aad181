"""The one seam the emulator adds: Lambda invocations run the real handlers in-process.

moto's own Lambda needs Docker; its simple backend's `invoke` is replaced so that a
Task state calls `functions/<step>/app.py` exactly as Lambda would, and an exception
becomes a function error with Lambda's payload shape (`errorType`, `errorMessage`), so
the ASL's Retry/Catch by name behave as in AWS. The AWS calls a step makes are counted
here too, by operation, separately from the calls the state machine itself makes.

Metrics: with `POWERTOOLS_METRICS_DISABLED` (the emulator's default) Powertools never
flushes, yet it keeps every value in a class-level set shared by all handlers and prints
the whole set as EMF JSON each time one metric reaches 100 values: a long run floods
stdout. While the emulator is installed, each metric a handler adds is still validated by
Powertools (name, unit, value, resolution) but on a throw-away set, and then only counted
(`CallLedger.metrics`, `emitted_metrics()`).
"""

from __future__ import annotations

import contextvars
import importlib.util
import json
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.client
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from moto.awslambda_simple import models as simple_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service as service_task,
)

from atc_xaccount import external_ids
from atc_xaccount_cli.local.calls import is_write as is_write  # re-exported: the writes rule
from atc_xaccount_cli.local.template import FunctionSpec

_metrics_lock = threading.Lock()
_emitted_metrics: Counter[str] = Counter()


def emitted_metrics() -> dict[str, int]:
    """Metric values the emulated handlers added in this process (counted, not printed), by name."""
    with _metrics_lock:
        return dict(sorted(_emitted_metrics.items()))


@dataclass
class LocalContext:
    """The parts of Lambda's context object the handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    #: When the invocation's Timeout runs out (time.monotonic()), as Lambda counts it.
    deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self.deadline - time.monotonic()) * 1000))


class CallLedger:
    """Counts the AWS API calls made while a step runs (thread-safe: executions overlap)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_operation: Counter[str] = Counter()
        self.by_step: dict[str, Counter[str]] = {}
        self.by_execution: dict[str, Counter[str]] = {}
        #: Metric values the handlers added (name -> count); dropped, never printed.
        self.metrics: Counter[str] = Counter()

    def add_metric(self, name: str) -> None:
        with self._lock:
            self.metrics[name] += 1
        with _metrics_lock:
            _emitted_metrics[name] += 1

    def add(self, step: str, key: str, execution: str | None = None) -> None:
        with self._lock:
            self.by_operation[key] += 1
            self.by_step.setdefault(step, Counter())[key] += 1
            if execution:
                self.by_execution.setdefault(execution, Counter())[key] += 1

    def summary(self, execution: str | None = None) -> dict[str, Any]:
        """Calls of every step, or of one execution's steps."""
        with self._lock:
            counter = self.by_operation if execution is None else self.by_execution.get(execution, Counter())
            ops = dict(sorted(counter.items()))
        return {
            "total": sum(ops.values()),
            "writes": sum(n for k, n in ops.items() if is_write(k)),
            "by_operation": ops,
        }

    def reset(self) -> None:
        with self._lock:
            self.by_operation.clear()
            self.by_step.clear()
            self.by_execution.clear()
            self.metrics.clear()


#: Hook for fault injection: called before each step AWS call with (step, key, params).
BeforeCall = Callable[[str, str, dict[str, Any]], None]

#: Hook for fault injection after each step AWS call: (step, key, params, response) -> the response the step sees.
AfterCall = Callable[[str, str, dict[str, Any], Any], Any]

#: Hook for the step roles (step_roles.py): (step, client, operation, params); raises AWS's AccessDenied.
Authorize = Callable[[str, Any, str, dict[str, Any]], None]

#: Hook around a step's AWS call (aws_time.StaleReads): (step, client, key, params, proceed,
#: original) -> the response; `proceed()` makes the call, `original(client, operation, params)`
#: makes another one that no hook sees.
AroundCall = Callable[[str, Any, str, dict[str, Any], Callable[[], Any], Callable[..., Any]], Any]


class Dispatcher:
    """Runs handlers for invoked functions and watches the AWS calls they make."""

    def __init__(self, functions: dict[str, FunctionSpec], ledger: CallLedger) -> None:
        self.functions = functions
        self.ledger = ledger
        self.before_call: BeforeCall | None = None
        self.after_call: AfterCall | None = None
        self.authorize: Authorize | None = None
        #: Judges every sts:AssumeRole, a step's or anyone else's (trust_judge.py).
        self.judge_assume: Callable[[str | None, Any, dict[str, Any]], None] | None = None
        self.around_call: AroundCall | None = None
        #: AWS's timing (aws_time.AwsTiming): each step call and invocation takes its seconds.
        self.timing: Any = None
        # Context variables, not thread-locals: a step that runs independent reads in worker
        # threads (with the caller's context copied) still has its calls counted as its own.
        self._step: contextvars.ContextVar[str | None] = contextvars.ContextVar(f"step-{id(self)}", default=None)
        self._execution: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"execution-{id(self)}", default=None
        )
        #: The Task state whose service integration (not a Lambda step) is calling AWS:
        #: faults can be injected there too (`PublishReady/events:PutEvents=fail`); those
        #: calls are the state machine's own, so the ledger does not count them.
        self._integration: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"integration-{id(self)}", default=None
        )
        self._modules: dict[str, ModuleType] = {}
        self._import_lock = threading.Lock()

    @property
    def current_step(self) -> str | None:
        return self._step.get()

    @property
    def current_execution(self) -> str | None:
        return self._execution.get()

    def handler_for(self, logical_id: str) -> Callable[..., Any]:
        spec = self.functions[logical_id]
        module_name, _, attr = spec.handler.rpartition(".")
        with self._import_lock:
            if logical_id not in self._modules:
                path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
                unique = f"atc_step_{logical_id}"
                module_spec = importlib.util.spec_from_file_location(unique, path)
                if module_spec is None or module_spec.loader is None:
                    raise FileNotFoundError(path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[unique] = module
                module_spec.loader.exec_module(module)
                self._modules[logical_id] = module
        return getattr(self._modules[logical_id], attr)

    def invoke(self, function_ref: str, payload: bytes | str | None, response_headers: dict[str, str]) -> bytes:
        logical_id = function_ref.rsplit(":", 1)[-1]
        event = json.loads(payload or "{}")
        request_id = str(uuid.uuid4())
        if self.timing is not None:
            time.sleep(self.timing.invoke_seconds())
        context = LocalContext(
            logical_id,
            f"arn:aws:lambda:local:function:{logical_id}",
            request_id,
            deadline=time.monotonic() + self.functions[logical_id].timeout,
        )
        step_token = self._step.set(logical_id)
        execution_token = self._execution.set(event.get("execution") if isinstance(event, dict) else None)
        # Each function runs in containers of its own: what one caches (the fingerprint key)
        # another reads again with its own role (atc_xaccount.external_ids.CONTAINER).
        container_token = external_ids.CONTAINER.set(logical_id)
        try:
            result = self.handler_for(logical_id)(event, context)
        except Exception as exc:  # noqa: BLE001 - becomes Lambda's function error, as in AWS
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "requestId": request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode()
        finally:
            self._step.reset(step_token)
            self._execution.reset(execution_token)
            external_ids.CONTAINER.reset(container_token)
        return json.dumps(result).encode()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Patch moto's simple Lambda and botocore for the lifetime of the emulator."""
        dispatcher = self
        original_invoke = simple_lambda.LambdaSimpleBackend.invoke
        original_call = botocore.client.BaseClient._make_api_call
        original_add_metric = AmazonCloudWatchEMFProvider.add_metric

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return dispatcher.invoke(function_name, body, response_headers)

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            step = dispatcher.current_step
            key = f"{client.meta.service_model.endpoint_prefix}:{operation_name}"
            if step is not None:
                dispatcher.ledger.add(step, key, dispatcher.current_execution)
                # AWS authorizes a request before anything else can go wrong with it.
                if dispatcher.authorize is not None:
                    dispatcher.authorize(step, client, operation_name, api_params)
                if key == "sts:AssumeRole" and dispatcher.judge_assume is not None:
                    dispatcher.judge_assume(step, client, api_params)
                if dispatcher.before_call is not None:
                    dispatcher.before_call(step, key, api_params)
                if dispatcher.timing is not None:
                    time.sleep(dispatcher.timing.call_seconds(key, is_write(key)))
                if dispatcher.around_call is not None:
                    response = dispatcher.around_call(
                        step,
                        client,
                        key,
                        api_params,
                        lambda: original_call(client, operation_name, api_params),
                        original_call,
                    )
                else:
                    response = original_call(client, operation_name, api_params)
            else:
                if key == "sts:AssumeRole" and dispatcher.judge_assume is not None:
                    dispatcher.judge_assume(None, client, api_params)  # an operator, the proof of access
                elif dispatcher.before_call is not None and (state := dispatcher._integration.get()) is not None:
                    dispatcher.before_call(state, key, api_params)
                response = original_call(client, operation_name, api_params)
            if step is not None and dispatcher.after_call is not None:
                response = dispatcher.after_call(step, key, api_params, response)
            return response

        def add_metric(provider: Any, name: str, unit: Any, value: float, resolution: Any = 60) -> None:
            if not is_metrics_disabled():
                original_add_metric(provider, name, unit, value, resolution)
                return
            scratch = AmazonCloudWatchEMFProvider(namespace=provider.namespace, service=provider.service)
            original_add_metric(scratch, name, unit, value, resolution)  # Powertools' own validation
            dispatcher.ledger.add_metric(name.strip())

        original_service_task = service_task.StateTaskService._eval_execution

        def eval_service_task(task: Any, env: Any) -> None:
            token = dispatcher._integration.set(task.name)
            try:
                original_service_task(task, env)
            finally:
                dispatcher._integration.reset(token)

        simple_lambda.LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
        botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        AmazonCloudWatchEMFProvider.add_metric = add_metric  # type: ignore[method-assign]
        service_task.StateTaskService._eval_execution = eval_service_task  # type: ignore[method-assign]
        try:
            yield
        finally:
            simple_lambda.LambdaSimpleBackend.invoke = original_invoke  # type: ignore[method-assign]
            botocore.client.BaseClient._make_api_call = original_call  # type: ignore[method-assign]
            AmazonCloudWatchEMFProvider.add_metric = original_add_metric  # type: ignore[method-assign]
            service_task.StateTaskService._eval_execution = original_service_task  # type: ignore[method-assign]


def code_zip(directory: Path) -> bytes:
    """The function's real code, zipped, so moto holds what Lambda would."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.glob("*.py")):
            archive.write(path, path.name)
    return buffer.getvalue()
