"""Intent is durable before the first write: a deregistration that fails midway is reported
and finished, never repaired back (issue 15 item 5)."""

from __future__ import annotations

import copy

import pytest

from atc_xaccount_cli.local.run import RunReport, run_audit
from tests.lifecycle.conftest import (
    DRIFT,
    FIRST,
    ROOT,
    admits,
    deregistration,
    external_id,
    published,
    registration,
    registry_of,
    run,
    targets,
)


@pytest.fixture(scope="module")
def half_gone(registered) -> RunReport:
    """demo-cluster-1's deregistration revoked its grant, then failed detaching the assume policy."""
    report = run([deregistration(FIRST)], registered.world, faults=["iam:DetachRolePolicy=fail"])
    assert report.result.status == "FAILED", "the fault must stop the deregistration midway"
    return report


def test_the_intent_is_recorded_before_the_first_revoke(registered, half_gone):
    assert registry_of(half_gone.world)[FIRST]["state"] == "REVOKING"
    assert not admits(half_gone.world, external_id(registered.world, FIRST)), "the grant was revoked first"
    assert published(half_gone, "Cluster S3 Access Failed"), "the failed deregistration is reported"


def test_the_audit_reports_a_failed_deregistration_and_never_grants_it_back(registered, half_gone):
    report = run_audit(ROOT, copy.deepcopy(half_gone.world), parameters={"RepairDrift": "true"})

    assert report.result.status == "SUCCEEDED", report.cause_message
    (drift,) = [d for e in published(report, DRIFT) for d in e["detail"]["drift"]]
    assert drift["kind"] == "DeregistrationIncomplete" and drift["repairable"] is False
    assert "re-run the deregistration" in drift["detail"]
    assert not admits(report.world, external_id(registered.world, FIRST)), "repair must not re-grant"
    # With repair on, the audit re-drives the deregistration itself, which converges.
    (redrive,) = report.executions[1:]
    assert redrive.machine == "OffboardStateMachine" and redrive.result.status == "SUCCEEDED"
    assert registry_of(report.world)[FIRST]["state"] == "REVOKED"
    assert "atc-s3-assume-role" not in targets(report.world)["111111111111"]["policies"]


def test_re_running_the_deregistration_converges(registered, half_gone, sample_world):
    again = run([deregistration(FIRST)], half_gone.world)

    assert again.result.status == "SUCCEEDED", again.cause_message
    assert registry_of(again.world)[FIRST]["state"] == "REVOKED"
    assert targets(again.world) == targets({"accounts": sample_world["accounts"]})


def test_nothing_registers_the_cluster_again_until_its_deregistration_finished(half_gone):
    report = run([registration(FIRST)], half_gone.world)

    assert report.result.error == "DeregistrationIncomplete", report.cause_message
    assert "re-run its deregistration" in report.cause_message
    assert report.calls["writes"] == 0
    assert targets(report.world) == targets(half_gone.world)
