"""Rollback of partial failures: a failure injected after each step undoes exactly this
execution's changes, publishes Failed and ends FAILED with the original cause."""

from __future__ import annotations

import copy

import pytest

from atc_xaccount_cli.local.run import RunReport
from tests.lifecycle.conftest import (
    CM,
    FAILED,
    FIRST,
    admits,
    external_id,
    iam_writes,
    published,
    registration,
    registry_of,
    run,
    secrets_of,
    targets,
)

SECOND = "demo-cluster-2"

#: (fault, the call named in the cause, IAM writes of the run: the failed call counts, and every
#: undo; whether the external ID's secret was created — MergeTrust stores it right before its write)
AFTER_EACH_STEP = [
    pytest.param(
        "EnsureAssumePolicy/iam:CreatePolicy=fail",
        "iam:CreatePolicy",
        {"iam:CreatePolicy": 1},
        0,
        id="EnsureAssumePolicy",
    ),
    pytest.param(
        "EnsureAssumePolicy/iam:AttachRolePolicy=fail",
        "iam:AttachRolePolicy",
        {"iam:CreatePolicy": 1, "iam:AttachRolePolicy": 1, "iam:DeletePolicy": 1},
        0,
        id="EnsureAssumePolicy-attach",
    ),
    pytest.param(
        "MergeTrust/iam:UpdateAssumeRolePolicy=fail",
        "iam:UpdateAssumeRolePolicy",
        {
            "iam:CreatePolicy": 1,
            "iam:AttachRolePolicy": 1,
            "iam:UpdateAssumeRolePolicy": 1,
            "iam:DetachRolePolicy": 1,
            "iam:DeletePolicy": 1,
        },
        1,
        id="MergeTrust",
    ),
    pytest.param(
        "Record/dynamodb:TransactWriteItems=fail",
        "dynamodb:TransactWriteItems",
        {
            "iam:CreatePolicy": 1,
            "iam:AttachRolePolicy": 1,
            "iam:UpdateAssumeRolePolicy": 2,
            "iam:DetachRolePolicy": 1,
            "iam:DeletePolicy": 1,
        },
        1,
        id="Record",
    ),
]


def assert_failed_with_original_cause(report: RunReport, call: str) -> None:
    assert report.result.status == "FAILED"
    assert report.result.error == "AwsOperationFailed", "the original error, not one from the rollback"
    assert call in report.cause_message
    assert "ServiceFailure" in report.cause_message


@pytest.mark.parametrize(("fault", "call", "writes", "secrets_created"), AFTER_EACH_STEP)
def test_failure_after_each_step_restores_the_accounts_exactly(sample_world, fault, call, writes, secrets_created):
    report = run([registration(FIRST)], sample_world, faults=[fault])

    assert_failed_with_original_cause(report, call)
    assert [f["call"] for f in report.faults] == [call], "the fault hit once, where it was aimed"
    assert iam_writes(report.calls) == writes, "every write this execution made was undone"
    assert targets(report.world) == sample_world["accounts"]
    assert report.calls["by_operation"].get("secretsmanager:CreateSecret", 0) == secrets_created
    assert secrets_of(report.world) == {}, "the external ID secret this execution created is gone"
    assert registry_of(report.world) == {}
    failed = published(report, FAILED)
    assert len(failed) == 1
    assert failed[0]["detail"]["clusterId"] == FIRST
    assert failed[0]["detail"]["error"] == "AwsOperationFailed"
    assert call in failed[0]["detail"]["cause"]


def test_failed_new_policy_version_keeps_all_five_versions(sample_world):
    world = copy.deepcopy(sample_world)
    foreign = {"Sid": "OpsReadOnly", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    world["accounts"][CM]["policies"]["atc-s3-assume-role"] = {
        "document": {"Version": "2012-10-17", "Statement": [foreign]},
        "versions": 5,
    }
    world["accounts"][CM]["roles"]["atc-node"]["attached"] = [f"arn:aws:iam::{CM}:policy/atc-s3-assume-role"]

    # Denied once (not transient): the retired version's document goes back as a version.
    report = run([registration(FIRST)], world, faults=["EnsureAssumePolicy/iam:CreatePolicyVersion=denied:1:1"])

    assert report.result.status == "FAILED"
    # A denial of the automation role's call is named as such (issue 10 item 5).
    assert report.result.error == "AutomationRoleDenied" and "AccessDenied" in report.cause_message
    assert targets(report.world) == world["accounts"]


# --- failures when another registration already exists ---------------------------------------


@pytest.fixture(scope="module")
def over_existing(registered: RunReport) -> dict[str, RunReport]:
    """Failures at Record (after every write) on a world where demo-cluster-1 is registered."""
    fault = ["Record/dynamodb:TransactWriteItems=fail"]
    return {
        "second cluster": run([registration(SECOND)], registered.world, faults=fault),
        "new external id": run(
            [registration(FIRST, externalId="operator-new-id:0123456789")], registered.world, faults=fault
        ),
    }


def test_failed_second_cluster_leaves_the_first_clusters_grant_untouched(registered, over_existing):
    report = over_existing["second cluster"]

    assert_failed_with_original_cause(report, "dynamodb:TransactWriteItems")
    assert iam_writes(report.calls) == {"iam:UpdateAssumeRolePolicy": 2}, "its grant was written, then undone"
    assert targets(report.world) == targets(registered.world)
    assert admits(report.world, external_id(registered.world, FIRST))
    assert secrets_of(report.world) == secrets_of(registered.world)
    assert registry_of(report.world) == registry_of(registered.world)
    assert [e["detail"]["clusterId"] for e in published(report, FAILED)] == [SECOND]


def test_failed_change_of_external_id_restores_the_trust_policy(registered, over_existing):
    report = over_existing["new external id"]

    assert_failed_with_original_cause(report, "dynamodb:TransactWriteItems")
    assert targets(report.world) == targets(registered.world)
    assert registry_of(report.world) == registry_of(registered.world)


def test_failed_change_of_external_id_keeps_the_previous_id_in_its_secret(registered, over_existing):
    report = over_existing["new external id"]

    assert secrets_of(report.world) == secrets_of(registered.world)
    assert admits(report.world, external_id(report.world, FIRST)), "the stored ID must still open the door"
