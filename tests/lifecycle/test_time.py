"""AWS's time (issue 18): stale IAM reads, Secrets Manager's deletion lag, the real wait.

Each scenario is one emulator run: `sequential` runs its events one after the other on the
same emulator (the locks table and the emulator's memory of the last write survive), so
"deregister A, then register B" is exactly that.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.local.faults import FaultPlan
from atc_xaccount_cli.local.run import RunReport, run_events
from tests.lifecycle.conftest import (
    deregistration,
    external_id,
    granted_ids,
    iam_writes,
    registration,
    secrets_of,
)

ROOT = Path(__file__).resolve().parents[2]


def run_in_order(
    events: list[dict[str, Any]], world: dict[str, Any], faults: list[str], *, sequential: bool = True
) -> RunReport:
    labelled = [(f"event-{i}", e) for i, e in enumerate(events)]
    plan = FaultPlan(faults, seed=7) if faults else None
    return run_events(ROOT, labelled, copy.deepcopy(world), prove=False, faults=plan, sequential=sequential)


def statuses(report: RunReport) -> list[tuple[str, str | None]]:
    return [(e.result.status, e.cause_message) for e in report.executions]


@pytest.fixture(scope="module")
def revoked_then_registered(sample_world: dict[str, Any]) -> RunReport:
    """A registered, then deregistered, then B registered on the same role; IAM reads lag by 3."""
    events = [registration("stale-a"), deregistration("stale-a"), registration("stale-b")]
    return run_in_order(events, sample_world, ["iam:GetRole=stale:1:3"])


def test_a_revoked_id_never_comes_back_through_a_stale_read(revoked_then_registered: RunReport) -> None:
    report = revoked_then_registered
    assert [s for s, _ in statuses(report)] == ["SUCCEEDED"] * 3, statuses(report)
    assert any(i["kind"] == "stale" for i in report.faults), "the fault never aged a read"
    world = report.world
    assert granted_ids(world) == [external_id(world, "stale-b")]


def test_two_registrations_racing_on_one_role_both_end_granted(sample_world: dict[str, Any]) -> None:
    report = run_in_order(
        [registration("race-a"), registration("race-b")], sample_world, ["iam:GetRole=stale:1:2"], sequential=False
    )
    assert [s for s, _ in statuses(report)] == ["SUCCEEDED"] * 2, statuses(report)
    world = report.world
    assert granted_ids(world) == sorted([external_id(world, "race-a"), external_id(world, "race-b")])


def test_re_registering_right_after_deregistration_succeeds_under_the_deletion_lag(
    sample_world: dict[str, Any],
) -> None:
    events = [registration("lagged"), deregistration("lagged"), registration("lagged")]
    report = run_in_order(events, sample_world, [])
    assert [s for s, _ in statuses(report)] == ["SUCCEEDED"] * 3, statuses(report)
    world = report.world
    assert granted_ids(world) == [external_id(world, "lagged")]
    assert list(secrets_of(world)) == ["atc-xaccount/lagged/external-id"]


def test_stale_reads_age_only_documents_a_step_wrote(sample_world: dict[str, Any]) -> None:
    """Without a write in the run, `stale` has nothing older to answer with: nothing changes."""
    report = run_in_order([registration("fresh")], sample_world, ["iam:GetPolicy=stale:1:5"])
    assert statuses(report) == [("SUCCEEDED", None)]
    assert iam_writes(report.calls)["iam:CreatePolicy"] == 1
