"""Exact undo through the real ASL (issue 9 item 4): what we deleted comes back, what
existed before us stays, compensation retries and, when it cannot finish, says what it left."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from atc_xaccount.errors import left_from_cause
from atc_xaccount_cli.local.run import RunReport, run_audit
from tests.lifecycle.conftest import (
    ASSUME_POLICY_ARN,
    CM,
    FIRST,
    ROOT,
    admits,
    deregistration,
    external_id,
    iam_writes,
    registration,
    registry_of,
    relocated,
    run,
    secrets_of,
    targets,
)

SECOND = "demo-cluster-2"
FOREIGN = {"Sid": "OpsReadOnly", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
FOREIGN_POLICY = {"Version": "2012-10-17", "Statement": [FOREIGN]}


def canonical(state: Any) -> str:
    return json.dumps(state, sort_keys=True)


def with_foreign_policy(world: dict[str, Any], *, versions: int = 1, attached: bool = False) -> dict[str, Any]:
    world = copy.deepcopy(world)
    world["accounts"][CM]["policies"]["atc-s3-assume-role"] = {"document": FOREIGN_POLICY, "versions": versions}
    if attached:
        world["accounts"][CM]["roles"]["atc-node"]["attached"] = [ASSUME_POLICY_ARN]
    return world


def assert_accounts_as_before(report: RunReport, world: dict[str, Any], *, versions: bool = True) -> None:
    """Statement by statement, in canonical JSON: the target accounts are as they were."""
    after, before = targets(report.world), world["accounts"]
    assert sorted(after) == sorted(before)
    for account, state in before.items():
        for name, role in state.get("roles", {}).items():
            got = after[account]["roles"][name]
            assert [canonical(s) for s in got["trust"]["Statement"]] == [
                canonical(s) for s in role["trust"]["Statement"]
            ]
            assert sorted(got["attached"]) == sorted(role.get("attached", []))
        if versions:
            assert canonical(after[account].get("policies", {})) == canonical(state.get("policies", {}))
        else:  # a deregistration writes the earlier document back as a new version
            documents = {name: canonical(p["document"]) for name, p in after[account].get("policies", {}).items()}
            assert documents == {name: canonical(p["document"]) for name, p in state.get("policies", {}).items()}


# --- a. a retired policy version is never lost ------------------------------------------------


def test_denied_new_version_and_denied_restore_fail_naming_the_retired_document(sample_world):
    world = with_foreign_policy(sample_world, versions=5, attached=True)

    report = run([registration(FIRST)], world, faults=["iam:CreatePolicyVersion=denied"])

    assert report.result.status == "FAILED"
    assert report.result.error == "CompensationIncomplete", report.cause_message
    [left] = left_from_cause(report.result.cause)
    assert left["change"] == "retiredVersion" and left["policyArn"] == ASSUME_POLICY_ARN
    assert left["retiredVersion"]["document"] == FOREIGN_POLICY, "the retired document travels in the error"
    assert "AccessDenied" in report.cause_message
    # What is left is on the cluster's record, for the audit.
    [recorded] = registry_of(report.world)[FIRST]["leftBehind"]
    assert recorded["retiredVersion"]["document"] == FOREIGN_POLICY
    assert targets(report.world)[CM]["policies"]["atc-s3-assume-role"]["versions"] == 4

    audit = run_audit(ROOT, report.world)
    findings = [d for c in audit.result.output["clusters"] for d in c["drift"]]
    assert [d["kind"] for d in findings] == ["LeftByFailedCompensation"]
    assert "v1" in findings[0]["detail"] and ASSUME_POLICY_ARN in findings[0]["resource"]


def test_a_failure_after_a_retirement_gives_the_retired_version_back(sample_world):
    world = with_foreign_policy(sample_world, versions=5, attached=True)

    report = run([registration(FIRST)], world, faults=["Record/dynamodb:TransactWriteItems=fail"])

    assert report.result.status == "FAILED" and report.result.error == "AwsOperationFailed"
    assert_accounts_as_before(report, world)
    writes = iam_writes(report.calls)
    assert writes["iam:DeletePolicyVersion"] == 2, "the retired version, then this execution's own"
    assert writes["iam:CreatePolicyVersion"] == 2, "this execution's version, then the retired document back"


# --- b. a foreign policy that was not attached ------------------------------------------------


@pytest.fixture(scope="module")
def foreign_unattached(sample_world) -> dict[str, Any]:
    world = with_foreign_policy(sample_world)
    one = run([registration(FIRST)], world)
    two = run([registration(SECOND)], one.world)
    first_gone = run([deregistration(FIRST)], two.world)
    last_gone = run([deregistration(SECOND)], first_gone.world)
    return {"world": world, "one": one, "two": two, "first_gone": first_gone, "last_gone": last_gone}


def test_registering_attaches_a_foreign_policy_and_the_last_deregistration_detaches_it(foreign_unattached):
    runs = foreign_unattached
    for name in ("one", "two", "first_gone", "last_gone"):
        assert runs[name].result.status == "SUCCEEDED", (name, runs[name].cause_message)
    assert targets(runs["one"].world)[CM]["roles"]["atc-node"]["attached"] == [ASSUME_POLICY_ARN]
    assert targets(runs["first_gone"].world)[CM]["roles"]["atc-node"]["attached"] == [ASSUME_POLICY_ARN], (
        "another cluster still uses it"
    )
    assert_accounts_as_before(runs["last_gone"], runs["world"], versions=False)
    assert "iam:DeletePolicy" not in iam_writes(runs["last_gone"].calls), "what existed before us is never deleted"


def test_a_foreign_policy_attached_before_us_stays_attached(sample_world):
    world = with_foreign_policy(sample_world, attached=True)
    one = run([registration(FIRST)], world)
    gone = run([deregistration(FIRST)], one.world)

    assert gone.result.status == "SUCCEEDED", gone.cause_message
    assert_accounts_as_before(gone, world, versions=False)
    assert "iam:DetachRolePolicy" not in iam_writes(gone.calls)


# --- c. compensation retries, and is idempotent -----------------------------------------------


def test_a_throttle_on_the_compensations_own_call_does_not_stop_the_rollback(sample_world):
    report = run(
        [registration(FIRST)],
        sample_world,
        faults=["Record/dynamodb:TransactWriteItems=fail", "Compensate/iam:UpdateAssumeRolePolicy=throttle:1:1"],
    )

    assert report.result.status == "FAILED" and report.result.error == "AwsOperationFailed", report.cause_message
    assert [f["call"] for f in report.faults].count("iam:UpdateAssumeRolePolicy") == 1
    assert_accounts_as_before(report, sample_world)
    assert secrets_of(report.world) == {} and registry_of(report.world) == {}


def test_attach_failure_with_the_in_step_delete_throttled_once_leaves_nothing(sample_world):
    report = run(
        [registration(FIRST)],
        sample_world,
        faults=["iam:AttachRolePolicy=fail", "iam:DeletePolicy=throttle:1:1"],
    )

    assert report.result.status == "FAILED", report.cause_message
    assert_accounts_as_before(report, sample_world)
    assert iam_writes(report.calls)["iam:DeletePolicy"] == 2, "throttled once, then deleted"


def test_a_compensation_that_cannot_finish_fails_naming_what_it_left(sample_world):
    report = run(
        [registration(FIRST)],
        sample_world,
        faults=["Record/dynamodb:TransactWriteItems=fail", "Compensate/iam:UpdateAssumeRolePolicy=denied"],
    )

    assert report.result.status == "FAILED"
    assert report.result.error == "CompensationIncomplete", report.cause_message
    left = {item["change"] for item in left_from_cause(report.result.cause)}
    assert left == {"trust", "externalId"}, "the attachment and the policy were undone; the grant was not"
    assert "dynamodb:TransactWriteItems" in report.result.cause, "the original failure is named too"
    assert admits(report.world, external_id(report.world, FIRST)), "the grant is indeed still there"
    assert [i["change"] for i in registry_of(report.world)[FIRST]["leftBehind"]] == ["trust", "externalId"]
    assert targets(report.world)[CM] == sample_world["accounts"][CM], "the cluster manager account is as it was"


# --- e. a shared external ID ------------------------------------------------------------------


def test_a_shared_external_id_stays_while_another_cluster_uses_it(sample_world):
    shared, new = "shared-external-id-0123456789", "new-external-id-for-cluster-1"
    one = run([registration(FIRST, externalId=shared)], sample_world)
    two = run([registration(SECOND, externalId=shared)], one.world)
    moved = run([registration(FIRST, externalId=new)], two.world)

    assert moved.result.status == "SUCCEEDED", moved.cause_message
    assert admits(moved.world, shared), "the other cluster still opens the role with the shared ID"
    assert admits(moved.world, new)
    gone = run([deregistration(SECOND)], moved.world)
    assert gone.result.status == "SUCCEEDED", gone.cause_message
    assert not admits(gone.world, shared), "withdrawn once nobody uses it"
    assert admits(gone.world, new)


# --- d. a cluster that moves to other accounts ------------------------------------------------

OTHER_CM, OTHER_S3 = "444444444444", "555555555555"


# (A cluster cannot move to another cluster manager account: it belongs to the account that
# registered it, tests/lifecycle/test_authorization.py.)
@pytest.mark.parametrize(
    ("moved", "account"),
    [
        pytest.param({"s3AccountId": OTHER_S3, "buckets": ["atc-demo-transfers-2"]}, OTHER_S3, id="other-s3-account"),
    ],
)
def test_a_moved_cluster_is_revoked_in_every_account_it_was_granted_in(sample_world, moved, account):
    world = copy.deepcopy(sample_world)
    other = relocated(sample_world, OTHER_CM, OTHER_S3)["accounts"]
    # Bucket names are global: the other S3 account has its own.
    world["accounts"][account] = json.loads(
        json.dumps(other[account]).replace("atc-demo-transfers", "atc-demo-transfers-2")
    )
    first = run([registration(FIRST)], world)
    move = run([registration(FIRST, **moved)], first.world)
    assert move.result.status == "SUCCEEDED", move.cause_message
    assert registry_of(move.world)[FIRST]["placements"], "both placements are kept"
    assert len(registry_of(move.world)[FIRST]["placements"]) == 2

    gone = run([deregistration(FIRST, **{k: v for k, v in moved.items() if k != "buckets"})], move.world)

    assert gone.result.status == "SUCCEEDED", gone.cause_message
    assert_accounts_as_before(gone, world)
    assert not admits(gone.world, external_id(first.world, FIRST)), "the first placement's grant is gone"
    assert "placements" not in registry_of(gone.world)[FIRST]
