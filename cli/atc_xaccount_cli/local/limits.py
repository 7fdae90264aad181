"""Step Functions quotas the emulator enforces as AWS does, and the largest payload seen.

- Payload: a state's input and output and a task's result are at most 256 KiB (262,144
  bytes, UTF-8 JSON); over it the state fails with `States.DataLimitExceeded`. moto 5.2.5
  checks state outputs and task results against a module constant; the emulator makes the
  limit its own setting (`payload_bytes`, lowered by tests to prove a workflow stays under
  it at scale without generating megabytes), checks each state's input too, and records
  the largest payload it saw (a figure the benchmarks report).
- `States.DataLimitExceeded` is terminal: `States.ALL` in a Retry or Catch does not match it
  (moto's does).
- Execution history: at most 25,000 events per execution; AWS fails an execution that
  would exceed it. moto has no limit. The emulator fails it with `States.Runtime` (AWS
  documents that the execution fails, not the error name it records).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.eval.event import event_manager
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

#: AWS's quotas (Step Functions service quotas: "Maximum input or output size for a task,
#: state, or execution: 256 KiB"; "Maximum execution history size: 25,000 events").
PAYLOAD_BYTES = 256 * 1024
HISTORY_EVENTS = 25_000

_TERMINAL_EVENTS = frozenset(
    {
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionSucceeded,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
    }
)
_QUOTA_MODULES = (state_module, state_task_lambda, state_task_service)


@dataclass
class Limits:
    """The emulator's quotas (AWS's by default) and what the executions came closest to."""

    payload_bytes: int = PAYLOAD_BYTES
    history_events: int = HISTORY_EVENTS
    largest_payload: int = 0
    largest_history: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def payload_fits(self, value: Any) -> bool:
        text = value if isinstance(value, str) else to_json_str(value)
        size = len(text.encode("utf-8"))
        with self._lock:
            self.largest_payload = max(self.largest_payload, size)
        return size <= self.payload_bytes

    def reset_figures(self) -> None:
        with self._lock:
            self.largest_payload = 0
            self.largest_history = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(self._payload_quota())
            stack.enter_context(self._state_input_quota())
            stack.enter_context(self._history_quota())
            stack.enter_context(_lambda_result_quota())
            stack.enter_context(_data_limit_is_terminal())
            yield

    @contextmanager
    def _payload_quota(self) -> Iterator[None]:
        originals = {module: module.is_within_size_quota for module in _QUOTA_MODULES}
        for module in _QUOTA_MODULES:
            module.is_within_size_quota = self.payload_fits  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module, original in originals.items():
                module.is_within_size_quota = original  # type: ignore[attr-defined]

    @contextmanager
    def _state_input_quota(self) -> Iterator[None]:
        """AWS checks a state's input too (moto only its output)."""
        cls = state_module.CommonStateField
        original = cls._eval_state_input
        limits = self

        def eval_state_input(self: Any, env: Any) -> None:
            original(self, env)
            if env.stack and not limits.payload_fits(env.stack[-1]):
                raise _failure(
                    env,
                    StatesErrorNameType.StatesStatesDataLimitExceeded,
                    f"The state '{self.name}' has an input with a size exceeding the maximum number of bytes "
                    f"service limit ({limits.payload_bytes} bytes).",
                )

        cls._eval_state_input = eval_state_input  # type: ignore[method-assign]
        try:
            yield
        finally:
            cls._eval_state_input = original  # type: ignore[method-assign]

    @contextmanager
    def _history_quota(self) -> Iterator[None]:
        cls = event_manager.EventManager
        original = cls.add_event
        limits = self

        def add_event(manager: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
            count = len(manager._history_event_list)
            with limits._lock:
                limits.largest_history = max(limits.largest_history, count + 1)
            if count >= limits.history_events and event_type not in _TERMINAL_EVENTS:
                raise HistoryLimitExceeded(limits.history_events)
            return original(manager, context, event_type, *args, **kwargs)  # type: ignore[no-any-return]

        cls.add_event = add_event  # type: ignore[method-assign]
        try:
            yield
        finally:
            cls.add_event = original  # type: ignore[method-assign]


@contextmanager
def _lambda_result_quota() -> Iterator[None]:
    """moto 5.2.5 raises an oversize Lambda result as a LambdaFunctionFailed whose error name
    it then rebuilds as a custom error, which refuses the `States.` prefix and ends the
    execution with States.Runtime. AWS fails the task with States.DataLimitExceeded, as
    moto's generic state check does: use that."""
    cls = state_task_lambda.StateTaskLambda
    original = cls._verify_size_quota
    cls._verify_size_quota = state_module.CommonStateField._verify_size_quota  # type: ignore[assignment]
    try:
        yield
    finally:
        cls._verify_size_quota = original  # type: ignore[method-assign]


@contextmanager
def _data_limit_is_terminal() -> Iterator[None]:
    """AWS: "States.ALL ... can't catch the States.DataLimitExceeded terminal error type";
    moto's States.ALL matches it, so a Catch would carry on past an oversize state."""
    cls = error_equals_decl.ErrorEqualsDecl
    original = cls._eval_body
    terminal = StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded)

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if error_name == terminal and terminal not in self.error_names:
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    cls._eval_body = eval_body  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls._eval_body = original  # type: ignore[method-assign]


class _HistoryFailure(FailureEvent):
    """A FailureEvent raised where moto has no environment at hand (adding an event)."""

    def __init__(self, cause: str) -> None:
        error = StatesErrorNameType.StatesRuntime
        self.state_name = ""  # type: ignore[misc]
        self.source_event_id = 0  # type: ignore[misc]
        self.error_name = StatesErrorName(typ=error)  # type: ignore[misc]
        self.event_type = HistoryEventType.ExecutionFailed  # type: ignore[misc]
        self.event_details = EventDetails(  # type: ignore[misc]
            executionFailedEventDetails=ExecutionFailedEventDetails(error=error.to_name(), cause=cause)
        )


class HistoryLimitExceeded(FailureEventException):
    """The execution would record more events than the history quota allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            _HistoryFailure(f"The execution reached the maximum execution history size of {limit} events.")
        )


def _failure(env: Any, error: StatesErrorNameType, cause: str) -> FailureEventException:
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                executionFailedEventDetails=ExecutionFailedEventDetails(error=error.to_name(), cause=cause)
            ),
        )
    )
