"""The rollback rule at the step level (moto): undo only where the current state still
equals what this execution wrote; never overwrite someone else's later change."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from atc_xaccount.steps import converge
from atc_xaccount.steps.compensate import compensate
from tests.ops.conftest import (
    ASSUME_POLICY_ARN,
    CM,
    EC2_TRUST,
    REGION,
    S3,
    iam_in,
    request_for,
    seed_documented_prerequisites,
    step_context,
)

HAND_EDIT = {
    "Sid": "AddedByAnAdministrator",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::444444444444:role/auditor"},
    "Action": "sts:AssumeRole",
}


@pytest.fixture
def written(aws: None) -> dict[str, Any]:
    """An onboarding that made all three changes, as the state machine records them."""
    seed_documented_prerequisites()
    ctx = step_context(boto3.Session(region_name=REGION))
    request = request_for()
    external_id = converge.resolve_external_id(request, ctx)
    changes = {
        "assumePolicy": converge.ensure_assume_policy(request, ctx),
        "attach": converge.attach_policy(request, ctx),
        "trust": converge.merge_trust(request, ctx),
    }
    return {"ctx": ctx, "request": request, "externalId": external_id, "changes": changes}


def trust_now() -> dict[str, Any]:
    return iam_in(S3).get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]


def undo(written: dict[str, Any]) -> dict[str, str]:
    result = compensate(
        written["request"], written["ctx"], written["changes"], written["externalId"], "exec-1", "VerificationFailed"
    )
    return {entry["change"]: entry["result"] for entry in result["undone"]}


def test_untouched_changes_are_all_undone(written):
    assert undo(written) == {
        "trust": "restored",
        "attach": "detached",
        "assumePolicy": "deleted",
        "externalId": "deleted",
    }
    assert trust_now() == EC2_TRUST
    assert iam_in(CM).list_policies(Scope="Local")["Policies"] == []


def test_trust_policy_edited_after_our_write_is_left_as_the_editor_left_it(written):
    edited = trust_now()
    edited["Statement"].append(HAND_EDIT)
    iam_in(S3).update_assume_role_policy(RoleName="atc-s3-access-keys", PolicyDocument=json.dumps(edited))

    outcome = undo(written)

    assert outcome["trust"] == "skipped: the trust policy changed since this execution wrote it"
    assert trust_now() == edited, "someone else's later change must never be overwritten"
    assert outcome["attach"] == "detached", "the other changes are still undone"
    assert outcome["assumePolicy"] == "deleted"


def test_policy_given_a_new_version_after_ours_is_left_in_place(written):
    iam = iam_in(CM)
    theirs = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Theirs", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
    }
    iam.create_policy_version(PolicyArn=ASSUME_POLICY_ARN, PolicyDocument=json.dumps(theirs), SetAsDefault=True)

    outcome = undo(written)

    assert outcome["assumePolicy"] == "skipped: the policy changed since this execution wrote it"
    policy = iam.get_policy(PolicyArn=ASSUME_POLICY_ARN)["Policy"]
    document = iam.get_policy_version(PolicyArn=ASSUME_POLICY_ARN, VersionId=policy["DefaultVersionId"])
    assert document["PolicyVersion"]["Document"] == theirs
