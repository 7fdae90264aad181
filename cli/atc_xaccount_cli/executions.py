"""Following a Step Functions execution: states as they finish, progress while one retries or waits.

Shared by the embedded emulator and the operator commands against AWS. Everything is
read from the execution history, as Step Functions records it: a task that failed and
was scheduled again was retried (its Retry), one that failed and exited was caught (its
Catch), one still open after a failure waits for its next attempt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: History events that say a task attempt failed (Lambda tasks, service integrations).
FAILED_ATTEMPT = frozenset({"TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut"})
SCHEDULED = frozenset({"TaskScheduled", "LambdaFunctionScheduled"})


@dataclass
class StateRun:
    name: str
    entered: datetime
    exited: datetime | None = None
    #: The state ended the execution in failure (uncaught error, or a Fail state).
    failed: bool = False
    #: Attempts that failed and were retried (the state's Retry).
    retries: int = 0
    #: The error a Catch caught (the state exited after a failed attempt).
    caught: str | None = None
    #: The last failed attempt's error, while the state is open.
    last_error: str | None = None
    #: The state's output as the history records it (JSON text), once it exited.
    output: str | None = None

    @property
    def millis(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds() * 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ms": round(self.millis or 0, 1),
            "failed": self.failed,
            "retries": self.retries,
            "caught": self.caught,
        }


@dataclass(frozen=True)
class Progress:
    """A state that is not done yet and why: retrying after an error, or a Wait state."""

    state: str
    kind: str  # "retrying" | "waiting"
    attempt: int = 0
    max_attempts: int = 0
    seconds: float | None = None
    error: str | None = None
    #: The retrier's JitterStrategy is FULL: the wait is up to `seconds`.
    jitter: bool = False


@dataclass
class ExecutionResult:
    arn: str
    name: str
    status: str
    error: str | None
    cause: str | None
    output: Any
    states: list[StateRun] = field(default_factory=list)
    transitions: int = 0
    #: The execution history as Step Functions records it (each state's input and output).
    history: list[dict[str, Any]] = field(default_factory=list)

    def state_output(self, name: str) -> Any:
        """The parsed output of the last run of state `name` (None if it never exited)."""
        for state in reversed(self.states):
            if state.name == name and state.output:
                return json.loads(state.output)
        return None


def follow_execution(
    sfn: Any,
    arn: str,
    *,
    on_state: Callable[[StateRun], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    timeout: float = 600,
    poll: float = 1.0,
) -> ExecutionResult:
    """Poll until the execution ends; report each state once, as it completes, and what it waits for."""
    reported = 0
    deadline = time.monotonic() + timeout
    polls = 0
    states: list[StateRun] = []
    transitions = 0
    events: list[dict[str, Any]] = []
    announced: set[tuple[str, int, str]] = set()
    definition: dict[str, Any] | None = None
    live = on_state is not None or on_progress is not None
    while True:
        described = sfn.describe_execution(executionArn=arn)
        finished = described["status"] != "RUNNING"
        # Reading the history is the expensive call: only for the live view, and sparingly.
        if finished or (live and polls % max(1, int(0.2 / poll)) == 0):
            events = _history(sfn, arn)
            states, transitions = state_runs(events)
            done = [s for s in states if s.exited is not None]
            if on_state is not None:
                for state in done[reported:]:
                    on_state(state)
            reported = len(done)
            if on_progress is not None and not finished:
                if definition is None:
                    definition = _definition(sfn, arn)
                for progress in pending(states, definition):
                    key = (progress.state, progress.attempt, progress.kind)
                    if key not in announced:
                        announced.add(key)
                        on_progress(progress)
        if finished:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still running after {timeout:.0f}s")
        polls += 1
        time.sleep(poll)
    result = result_of(described, states, transitions)
    result.history = events
    return result


def result_of(described: dict[str, Any], states: list[StateRun], transitions: int) -> ExecutionResult:
    output = described.get("output")
    return ExecutionResult(
        arn=described["executionArn"],
        name=described["name"],
        status=described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
        output=json.loads(output) if output else None,
        states=states,
        transitions=transitions,
    )


def describe(sfn: Any, arn: str) -> ExecutionResult:
    """The execution as it is now, with its states so far."""
    states, transitions = state_runs(_history(sfn, arn))
    return result_of(sfn.describe_execution(executionArn=arn), states, transitions)


def history_json(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History events as JSON: timestamps in ISO 8601, everything else as Step Functions gave it."""
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.items()} for e in events]


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def _definition(sfn: Any, arn: str) -> dict[str, Any]:
    """The execution's state machine definition (for the retriers' intervals and the Wait states)."""
    try:
        text = sfn.describe_state_machine_for_execution(executionArn=arn)["definition"]
        parsed: dict[str, Any] = json.loads(text)
    except (KeyError, ValueError):
        return {}
    return parsed


def _error_of(event: dict[str, Any]) -> str | None:
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
            return str(details["error"])
    return None


def state_runs(events: list[dict[str, Any]]) -> tuple[list[StateRun], int]:
    """Each state entered, in order, with its retries, caught error and output."""
    runs: list[StateRun] = []
    open_runs: dict[str, StateRun] = {}
    attempt_failed: dict[str, bool] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            open_runs[name] = StateRun(name, event["timestamp"])
            attempt_failed[name] = False
            runs.append(open_runs[name])
            if kind == "FailStateEntered":
                open_runs[name].failed = True
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            run = open_runs.pop(details["name"], None)
            if run is not None:
                run.exited = event["timestamp"]
                run.output = details.get("output")
                if attempt_failed.pop(run.name, False):
                    run.caught = run.last_error
                run.last_error = None
        elif kind in FAILED_ATTEMPT and runs:
            run = _innermost_open(runs)
            if run is not None:
                attempt_failed[run.name] = True
                run.last_error = _error_of(event)
        elif kind in SCHEDULED and runs:
            run = _innermost_open(runs)
            if run is not None and attempt_failed.get(run.name):
                run.retries += 1
                attempt_failed[run.name] = False
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted") and runs:
            for run in runs:
                if run.exited is None:
                    run.exited = event["timestamp"]
                    run.failed = True
    return runs, len(runs)


def _innermost_open(runs: list[StateRun]) -> StateRun | None:
    return next((run for run in reversed(runs) if run.exited is None), None)


def pending(states: list[StateRun], definition: dict[str, Any]) -> list[Progress]:
    """What the open states wait for: a retry after a failed attempt, or a Wait state's seconds."""
    found: list[Progress] = []
    for run in states:
        if run.exited is not None:
            continue
        spec = _find_state(definition, run.name)
        if run.last_error is not None:
            retrier = _retrier(spec, run.last_error)
            attempt = run.retries + 1
            if retrier is None:
                continue
            found.append(
                Progress(
                    run.name,
                    "retrying",
                    attempt=attempt,
                    max_attempts=int(retrier.get("MaxAttempts", 3)),
                    seconds=retry_delay(retrier, attempt),
                    error=run.last_error,
                    jitter=retrier.get("JitterStrategy") == "FULL",
                )
            )
        elif spec.get("Type") == "Wait":
            seconds = spec.get("Seconds")
            found.append(Progress(run.name, "waiting", seconds=float(seconds) if seconds is not None else None))
    return found


def retry_delay(retrier: dict[str, Any], attempt: int) -> float:
    """The interval before retry `attempt` (1-based), as Step Functions computes it (before any jitter)."""
    delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** (attempt - 1)
    cap = retrier.get("MaxDelaySeconds")
    return min(delay, float(cap)) if cap is not None else delay


def _retrier(spec: dict[str, Any], error: str) -> dict[str, Any] | None:
    for retrier in spec.get("Retry") or []:
        names = retrier.get("ErrorEquals") or []
        if error in names or "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout"):
            return dict(retrier)
    return None


def _find_state(definition: dict[str, Any], name: str) -> dict[str, Any]:
    """The state called `name` anywhere in the definition (Map iterators and Parallel branches too)."""
    states = definition.get("States") or {}
    if name in states:
        return dict(states[name])
    for spec in states.values():
        for inner in [spec.get("Iterator"), spec.get("ItemProcessor"), *(spec.get("Branches") or [])]:
            if isinstance(inner, dict):
                found = _find_state(inner, name)
                if found:
                    return found
    return {}


def cause_message(cause: str | None) -> str | None:
    """Lambda's error payload holds `errorMessage`; show that, not the JSON around it.

    A compensation that could not finish adds the failure it followed (`after`).
    """
    if not cause:
        return cause
    try:
        parsed = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if not isinstance(parsed, dict):
        return cause
    message = parsed.get("errorMessage", cause)
    after = parsed.get("after")
    if isinstance(after, dict) and after.get("error"):
        message = f"{message} (after {after['error']}: {cause_message(after.get('cause'))})"
    return str(message)


def compensation_json(result: ExecutionResult) -> dict[str, Any]:
    """`{"compensation": ...}`: what the onboarding's Compensate state undid, when it ran ({} otherwise)."""
    output = result.state_output("Compensate")
    compensation = output.get("compensation") if isinstance(output, dict) else None
    return {"compensation": compensation} if isinstance(compensation, dict) else {}
