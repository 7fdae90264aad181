"""Following a Step Functions execution: states as they finish, then the outcome.

Shared by the embedded emulator and the operator commands against AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class StateRun:
    name: str
    entered: datetime
    exited: datetime | None = None
    failed: bool = False

    @property
    def millis(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds() * 1000


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


def follow_execution(
    sfn: Any,
    arn: str,
    *,
    on_state: Callable[[StateRun], None] | None = None,
    timeout: float = 600,
    poll: float = 1.0,
) -> ExecutionResult:
    """Poll until the execution ends; report each state once, as it completes."""
    reported = 0
    deadline = time.monotonic() + timeout
    polls = 0
    states: list[StateRun] = []
    transitions = 0
    events: list[dict[str, Any]] = []
    while True:
        described = sfn.describe_execution(executionArn=arn)
        finished = described["status"] != "RUNNING"
        # Reading the history is the expensive call: only for the live view, and sparingly.
        if finished or (on_state is not None and polls % max(1, int(0.2 / poll)) == 0):
            events = _history(sfn, arn)
            states, transitions = _state_runs(events)
            done = [s for s in states if s.exited is not None]
            if on_state is not None:
                for state in done[reported:]:
                    on_state(state)
            reported = len(done)
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
    states, transitions = _state_runs(_history(sfn, arn))
    return result_of(sfn.describe_execution(executionArn=arn), states, transitions)


def history_json(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History events as JSON: timestamps in ISO 8601, everything else as Step Functions gave it."""
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.items()} for e in events]


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def _state_runs(events: list[dict[str, Any]]) -> tuple[list[StateRun], int]:
    runs: list[StateRun] = []
    open_runs: dict[str, StateRun] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            open_runs[name] = StateRun(name, event["timestamp"])
            runs.append(open_runs[name])
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_runs:
                open_runs.pop(name).exited = event["timestamp"]
        elif kind in ("TaskFailed", "LambdaFunctionFailed") and runs:
            runs[-1].failed = True
        elif kind == "ExecutionFailed" and runs and runs[-1].exited is None:
            runs[-1].exited = event["timestamp"]
            runs[-1].failed = True
    return runs, len(runs)
