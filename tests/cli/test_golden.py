"""Golden tests: the human report of every result type, pinned.

Each `golden/NAME.json` is what a real command printed with `--json` (captured from the
emulator and from `local serve`); the test renders it as the command does in human mode
and compares with `golden/NAME.txt`. A renderer change shows as a diff here; a workflow
output that changes shape fails here by name (ResultShapeError) instead of as a traceback
in front of an operator. `ATC_GOLDEN_UPDATE=1` rewrites the .txt files after a deliberate change.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.errors import ResultShapeError
from atc_xaccount_cli.executions import Progress, StateRun, state_runs
from atc_xaccount_cli.render.doctor import render_doctor
from atc_xaccount_cli.render.execution import render_run
from atc_xaccount_cli.render.local import render_local, render_many
from atc_xaccount_cli.render.operator import (
    render_events_put,
    render_plan,
    render_refused,
    render_rotation,
    render_shown,
    render_snapshot,
)
from atc_xaccount_cli.render.text import Out, progress_line, state_line
from atc_xaccount_cli.results import read_run
from atc_xaccount_cli.results_local import LocalRun, read_local
from atc_xaccount_cli.results_ops import (
    read_doctored,
    read_events_put,
    read_plan,
    read_refused,
    read_rotation,
    read_shown,
    read_snapshot,
)

GOLDEN = Path(__file__).parent / "golden"


def _local(out: Out, body: dict[str, Any], verbose: bool = False) -> None:
    result = read_local(body)
    if isinstance(result, LocalRun):
        render_local(out, result, verbose=verbose)
    else:
        render_many(out, result)


#: fixture -> how its command renders it in human mode.
RENDERERS: dict[str, Callable[[Out, dict[str, Any]], None]] = {
    "local-onboarded": _local,
    "local-onboarded-verbose": lambda out, body: _local(out, body, verbose=True),
    "local-onboarded-access-key": _local,
    "local-revoked": _local,
    "local-revoked-nothing": _local,
    "local-failed": _local,
    "local-compensated": _local,
    "local-bulk": _local,
    "local-audit": _local,
    "local-many": _local,
    "doctor-broken": lambda out, body: render_doctor(out, read_doctored(body)),
    "aws-register": lambda out, body: render_run(out, read_run(body)),
    "aws-revoked": lambda out, body: render_run(out, read_run(body)),
    "aws-audit": lambda out, body: render_run(out, read_run(body)),
    "aws-status": lambda out, body: render_run(out, read_run(body), with_states=True),
    "aws-plan": lambda out, body: render_plan(out, read_plan(body)),
    "aws-plan-refused": lambda out, body: render_refused(out, read_refused("plan", body)),
    "aws-show": lambda out, body: render_shown(out, read_shown(body)),
    "aws-show-unknown": lambda out, body: render_shown(out, read_shown(body)),
    "aws-snapshot": lambda out, body: render_snapshot(out, read_snapshot(body)),
    "aws-rotation": lambda out, body: render_rotation(out, read_rotation(body)),
    "aws-events-put": lambda out, body: render_events_put(out, read_events_put(body)),
}


def rendered(name: str) -> str:
    fixture = name.removesuffix("-verbose")
    body = json.loads((GOLDEN / f"{fixture}.json").read_text(encoding="utf-8"))["body"]
    stream = io.StringIO()
    RENDERERS[name](Out(stream), body)
    return stream.getvalue()


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_the_human_report_is_the_golden_one(name):
    text = rendered(name)
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("ATC_GOLDEN_UPDATE"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_every_fixture_has_a_renderer():
    assert {p.stem for p in GOLDEN.glob("*.json")} <= set(RENDERERS)


def test_a_deregistration_reports_each_change_and_no_traceback():
    """The defect: `_revoked` called .get() on formerPlacements' list and crashed after SUCCEEDED."""
    text = rendered("local-revoked")
    assert "demo-cluster-1 is deregistered:" in text
    assert "formerPlacements  none" in text
    assert "1 grant(s) removed from the trust policy of atc-s3-access-keys in 222222222222" in text


def test_deregistering_a_cluster_never_registered_says_so():
    """The defect: NothingDone's output has no `request`, and the report died on it after SUCCEEDED."""
    assert "Nothing to do: cluster demo-cluster-1 was never registered." in rendered("local-revoked-nothing")


def test_an_access_key_made_through_the_node_api_leaves_nothing_to_type_and_no_external_id_shown():
    text = rendered("local-onboarded-access-key")
    assert "nothing to type" in text and "(external IDs redacted)" in text
    assert "partner-7Qm2x9Lk" not in text, "not even a partner's external ID"


def test_access_analyzer_unavailable_is_said_once():
    text = rendered("local-onboarded")
    assert text.count("IAM Access Analyzer") == 1


def test_proof_lines_do_not_repeat_ok():
    assert "(ok)" not in rendered("local-onboarded")


def test_verbose_lists_each_steps_calls_on_a_happy_path():
    quiet, verbose = rendered("local-onboarded"), rendered("local-onboarded-verbose")
    assert "AWS calls by step (--verbose):" in verbose and "AWS calls by step" not in quiet
    assert "  PreflightFunction" in verbose


def test_a_result_missing_a_field_is_named_not_a_traceback():
    body = json.loads((GOLDEN / "aws-register.json").read_text())["body"]
    del body["output"]["roleArn"]
    with pytest.raises(ResultShapeError, match=r"result\.output: no roleArn"):
        read_run(body)


# --- state lines and progress, from histories as Step Functions records them ---------------


def _event(kind: str, second: int, **details: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {"type": kind, "timestamp": datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC), **details}


def _entered(name: str, second: int, kind: str = "Task") -> dict[str, Any]:
    return _event(f"{kind}StateEntered", second, stateEnteredEventDetails={"name": name})


def _exited(name: str, second: int) -> dict[str, Any]:
    return _event("TaskStateExited", second, stateExitedEventDetails={"name": name, "output": "{}"})


def test_a_retried_then_successful_state_reads_retried_not_fail():
    history = [
        _entered("PublishReady", 0),
        _event("TaskScheduled", 0),
        _event("TaskFailed", 1, taskFailedEventDetails={"error": "EventBridge.InternalException"}),
        _event("TaskScheduled", 2),
        _event("TaskFailed", 3, taskFailedEventDetails={"error": "EventBridge.InternalException"}),
        _event("TaskScheduled", 5),
        _event("TaskSucceeded", 5),
        _exited("PublishReady", 6),
    ]
    [run], _ = state_runs(history)
    assert (run.failed, run.retries, run.caught) == (False, 2, None)
    assert state_line(run) == "  ok      PublishReady                6000.0 ms  retried ×2"  # noqa: RUF001


def test_a_caught_error_reads_caught_and_an_uncaught_one_fail():
    history = [
        _entered("MergeTrust", 0),
        _event("LambdaFunctionScheduled", 0),
        _event("LambdaFunctionFailed", 1, lambdaFunctionFailedEventDetails={"error": "AwsOperationFailed"}),
        _exited("MergeTrust", 1),
        _entered("Failed", 2, kind="Fail"),
        _event("ExecutionFailed", 2),
    ]
    merge, fail = state_runs(history)[0]
    assert state_line(merge) == "  caught  MergeTrust                  1000.0 ms  AwsOperationFailed caught"
    assert state_line(fail).startswith("  FAIL    Failed")


def test_progress_while_a_state_waits_for_its_retry():
    definition = {
        "States": {
            "PublishReady": {
                "Type": "Task",
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2}],
            }
        }
    }
    history = [
        _entered("PublishReady", 0),
        _event("TaskScheduled", 0),
        _event("TaskFailed", 1, taskFailedEventDetails={"error": "EventBridge.InternalException"}),
        _event("TaskScheduled", 3),
        _event("TaskFailed", 4, taskFailedEventDetails={"error": "EventBridge.InternalException"}),
    ]
    from atc_xaccount_cli.executions import pending

    runs, _ = state_runs(history)
    [progress] = pending(runs, definition)
    assert progress == Progress("PublishReady", "retrying", 2, 6, 4.0, "EventBridge.InternalException")
    assert progress_line(progress) == "  ...     PublishReady retrying (2/6) in 4 s after EventBridge.InternalException"


def test_progress_of_a_wait_state():
    runs = [StateRun("AwaitPropagation", _event("x", 0)["timestamp"])]
    from atc_xaccount_cli.executions import pending

    [progress] = pending(runs, {"States": {"AwaitPropagation": {"Type": "Wait", "Seconds": 10}}})
    assert progress_line(progress) == "  ...     AwaitPropagation waiting 10 s"
