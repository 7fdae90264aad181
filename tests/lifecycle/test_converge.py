"""Converge by document (issue 18 item 1, docs/converge.md): a burst of one cluster manager
account's registrations writes each shared document a bounded number of times, with the
template's real propagation wait, and nobody fails for a lock; each cluster's undo removes
only what the group commit added for it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.local.faults import FaultPlan
from atc_xaccount_cli.local.run import RunReport, run_events
from tests.lifecycle.conftest import (
    ASSUME_POLICY_ARN,
    CM,
    external_id,
    granted_ids,
    iam_writes,
    registration,
    secret_name,
    secrets_of,
    targets,
)

ROOT = Path(__file__).resolve().parents[2]
TWENTY = [f"burst-{i:02d}" for i in range(20)]


def run(
    events: list[dict[str, Any]], world: dict[str, Any], *, wait: str = "0", faults: list[str] | None = None
) -> RunReport:
    labelled = [(f"event-{i}", e) for i, e in enumerate(events)]
    plan = FaultPlan(faults, seed=3) if faults else None
    return run_events(
        ROOT, labelled, copy.deepcopy(world), prove=False, faults=plan, parameters={"PropagationWaitSeconds": wait}
    )


@pytest.fixture(scope="module")
def burst(sample_world: dict[str, Any]) -> RunReport:
    """Twenty registrations of one cluster manager account, all at once, with the 10 s wait."""
    return run([registration(c) for c in TWENTY], sample_world, wait="10")


def test_twenty_at_once_with_the_real_wait_all_end_ready(burst: RunReport) -> None:
    failed = [(e.result.error, e.cause_message) for e in burst.executions if e.result.status != "SUCCEEDED"]
    assert failed == []
    world = burst.world
    assert granted_ids(world) == sorted(external_id(world, c) for c in TWENTY)


def test_twenty_at_once_write_each_shared_document_a_bounded_number_of_times(burst: RunReport) -> None:
    writes = iam_writes(burst.calls)
    # One trust policy, one assume policy, one attachment: a write per cluster was 20 + 20 + 1.
    assert writes.get("iam:UpdateAssumeRolePolicy", 0) <= 8, writes
    assert writes.get("iam:CreatePolicy", 0) == 1, writes
    assert writes.get("iam:CreatePolicyVersion", 0) + writes.get("iam:DeletePolicyVersion", 0) == 0, writes
    assert writes.get("iam:AttachRolePolicy", 0) == 1, writes


def test_a_failure_after_a_shared_write_undoes_only_its_own_grant(sample_world: dict[str, Any]) -> None:
    """Two clusters on one role; one fails after the commit wrote for it: the other keeps everything."""
    report = run(
        [registration("kept"), registration("undone")],
        sample_world,
        faults=["Record/dynamodb:TransactWriteItems=fail:1:1"],
    )
    by_status = {e.result.status: e for e in report.executions}
    assert set(by_status) == {"SUCCEEDED", "FAILED"}, [(e.result.status, e.cause_message) for e in report.executions]
    survivor = by_status["SUCCEEDED"].result.output["request"]["clusterId"]
    loser = ({"kept", "undone"} - {survivor}).pop()
    world = report.world
    assert granted_ids(world) == [external_id(world, survivor)]
    assert secret_name(loser) not in secrets_of(world)
    cm = world["accounts"][CM]
    assert ASSUME_POLICY_ARN in cm["roles"]["atc-node"]["attached"]


def test_a_lone_failure_after_its_commit_leaves_the_accounts_as_they_were(sample_world: dict[str, Any]) -> None:
    report = run([registration("alone")], sample_world, faults=["Record/dynamodb:TransactWriteItems=fail:1:1"])
    assert report.result.status == "FAILED"
    assert targets(report.world) == targets(copy.deepcopy(sample_world))
    assert iam_writes(report.calls)["iam:UpdateAssumeRolePolicy"] == 2  # the commit, and its undo
