"""The steps on moto, across two accounts reached through the automation role.

Preflight must refuse before the first write, naming what is missing and where; the
three changes then converge, and a second pass writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto.iam.models import iam_backends

from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import PrerequisiteMissing, QuotaExceeded
from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.extid import MIN_GENERATED_LENGTH
from atc_xaccount.steps import converge, preflight, verify
from atc_xaccount.trust import merge_trust_grant
from tests.ops.conftest import (
    ACCESS_ARN,
    ACCESS_POLICY,
    ASSUME_POLICY_ARN,
    CM,
    EC2_TRUST,
    NODE_ARN,
    REGION,
    S3,
    create_role,
    iam_in,
    request_for,
    seed_documented_prerequisites,
    step_context,
    watch,
)

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def base() -> boto3.Session:
    return boto3.Session(region_name=REGION)


def assert_nothing_written(calls: Any) -> None:
    assert "GetRole" in calls.operations, "the watch saw the step's reads"
    assert calls.writes == []
    assert iam_in(CM).list_policies(Scope="Local")["Policies"] == []


def test_preflight_passes_on_the_documented_prerequisites(base):
    seed_documented_prerequisites()
    calls = watch(base)

    result = preflight.preflight(request_for(), step_context(base))

    assert result["prerequisites"] == "present"
    assert result["upToDate"] is False
    assert result["trustPolicyQuota"] == 2048
    assert 0 < result["trustPolicySize"] <= 2048
    assert_nothing_written(calls)


@pytest.mark.parametrize(
    ("world", "resource_type", "name", "account"),
    [
        pytest.param({"node_role": False}, "role", "atc-node", CM, id="node-role-missing"),
        pytest.param({"access_role": False}, "role", "atc-s3-access-keys", S3, id="access-role-missing"),
        pytest.param(
            {"access_policy_attached": False},
            "policy attached to role atc-s3-access-keys",
            "atc-s3-policy",
            S3,
            id="access-policy-not-attached",
        ),
    ],
)
def test_preflight_names_the_missing_prerequisite_and_writes_nothing(base, world, resource_type, name, account):
    seed_documented_prerequisites(**world)
    calls = watch(base)

    with pytest.raises(PrerequisiteMissing) as info:
        preflight.preflight(request_for(), step_context(base))

    error = info.value
    assert (error.resource_type, error.name, error.account) == (resource_type, name, account)
    assert name in str(error) and account in str(error)
    assert_nothing_written(calls)


def padded_trust(size: int) -> dict[str, Any]:
    """EC2's statement and a partner's grant whose external ID pads the policy to `size` characters."""
    partner = {
        "Sid": "Partner",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": ""}},
    }
    trust = {"Version": "2012-10-17", "Statement": [*EC2_TRUST["Statement"], partner]}
    partner["Condition"]["StringEquals"]["sts:ExternalId"] = "p" * (size - non_whitespace_size(trust))
    assert non_whitespace_size(trust) == size
    return trust


def grant_size(external_id_length: int) -> int:
    """How many characters the node role's grant adds with an ID of that length."""
    trust = padded_trust(1000)
    return non_whitespace_size(merge_trust_grant(trust, NODE_ARN, "x" * external_id_length)[0]) - 1000


def raise_trust_quota(quota: int) -> None:
    """A raised quota (Service Quotas): IAM's default of 2,048 can only go up."""
    iam_backends[S3]["aws"].account_summary._assume_role_policy_size_quota = quota


def test_preflight_refuses_a_trust_policy_that_would_exceed_the_quota(base):
    seed_documented_prerequisites()
    iam_in(S3).update_assume_role_policy(RoleName="atc-s3-access-keys", PolicyDocument=json.dumps(padded_trust(2080)))
    raise_trust_quota(2100)
    calls = watch(base)

    with pytest.raises(QuotaExceeded) as info:
        preflight.preflight(request_for(), step_context(base))

    error = info.value
    assert error.account == S3
    assert error.limit == 2100
    assert error.size > 2100
    assert "AssumeRolePolicySizeQuota" in error.quota
    assert "atc-s3-access-keys" in error.resource
    message = str(error)
    for part in ("AssumeRolePolicySizeQuota", "atc-s3-access-keys", S3, "2100", "Service Quotas"):
        assert part in message
    assert_nothing_written(calls)
    assert "GetAccountSummary" in calls.operations, "over 2,048 characters the account's quota is read"


def test_preflight_reads_no_quota_for_a_policy_every_account_allows(base):
    seed_documented_prerequisites()
    calls = watch(base)

    result = preflight.preflight(request_for(), step_context(base))

    assert result["trustPolicySize"] <= 2048 and result["trustPolicyQuota"] == 2048
    assert "GetAccountSummary" not in calls.operations


def test_preflight_sizes_the_grant_with_the_external_id_it_will_use(base):
    """A generated ID fits where a long operator-chosen one would cross the quota."""
    seed_documented_prerequisites()
    size = 2100 - grant_size(MIN_GENERATED_LENGTH)
    iam_in(S3).update_assume_role_policy(RoleName="atc-s3-access-keys", PolicyDocument=json.dumps(padded_trust(size)))
    raise_trust_quota(2100)

    assert preflight.preflight(request_for(), step_context(base))["trustPolicySize"] == 2100
    with pytest.raises(QuotaExceeded) as info:
        preflight.preflight(request_for(externalId="a" * 900), step_context(base))
    assert info.value.size > 2100


def run_changes(base: boto3.Session, request: Any) -> dict[str, Any]:
    """The writing part of the workflow, in ASL order, each step with fresh sessions.

    Every step runs even when preflight finds nothing to do (the state machine would stop
    there): each must then be a no-op on its own.
    """
    pre = preflight.preflight(request, step_context(base))
    granted = converge.grant_assume_policy(request, step_context(base), pre["plan"])
    trust = converge.merge_trust(request, step_context(base), plan=pre["plan"])
    return {
        "preflight": pre,
        "externalId": trust["externalId"],
        "ensure_assume_policy": granted["assumePolicy"],
        "attach_policy": granted["attach"],
        "merge_trust": trust,
        "verify": verify.verify(request, step_context(base), pre, {"clusterManager": granted, "trust": trust}),
    }


def test_the_changes_converge_and_a_second_pass_writes_nothing(base):
    seed_documented_prerequisites()
    first_calls = watch(base)

    first = run_changes(base, request_for())

    assert first_calls.writes == ["CreatePolicy", "AttachRolePolicy", "CreateSecret", "UpdateAssumeRolePolicy"]
    assert first["verify"]["verified"] is True
    assert (first["verify"]["roleArn"], first["verify"]["nodeRoleArn"]) == (ACCESS_ARN, NODE_ARN)
    external_id = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId="atc-xaccount/demo-cluster-1/external-id"
    )["SecretString"]
    trust = iam_in(S3).get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]
    assert evaluate_trust(trust, NODE_ARN, external_id).allowed
    assert not evaluate_trust(trust, NODE_ARN, None).allowed

    second_base = boto3.Session(region_name=REGION)
    second_calls = watch(second_base)
    second = run_changes(second_base, request_for())

    assert first["preflight"]["upToDate"] is False
    assert second["preflight"]["upToDate"] is True, "a re-delivered event has nothing to do"
    assert second_calls.writes == []
    assert [second[k]["action"] for k in ("externalId", "ensure_assume_policy", "attach_policy", "merge_trust")] == [
        "unchanged"
    ] * 4
    assert second["verify"]["verified"] is True


def test_dry_run_steps_write_nothing_but_report_the_changes(base):
    seed_documented_prerequisites()
    converge.resolve_external_id(request_for(), step_context(base))  # the ID merge_trust reads
    calls = watch(base)
    ctx = step_context(base, dry_run=True)

    actions = [
        converge.ensure_assume_policy(request_for(), ctx)["action"],
        converge.attach_policy(request_for(), ctx)["action"],
        converge.merge_trust(request_for(), ctx)["action"],
    ]

    assert actions == ["created", "attached", "updated"]
    assert calls.writes == []
    cm_iam = iam_in(CM)
    assert cm_iam.list_attached_role_policies(RoleName="atc-node")["AttachedPolicies"] == []
    with pytest.raises(cm_iam.exceptions.NoSuchEntityException):
        cm_iam.get_policy(PolicyArn=ASSUME_POLICY_ARN)


def test_same_account_for_cluster_manager_and_buckets_gets_the_same_three_changes(base):
    seed_documented_prerequisites()
    # Buckets in the cluster manager account itself: access role and policy live there too.
    cm_iam = iam_in(CM)
    cm_iam.create_policy(PolicyName="atc-s3-policy", PolicyDocument=json.dumps(ACCESS_POLICY))
    create_role(cm_iam, "atc-s3-access-keys")
    cm_iam.attach_role_policy(RoleName="atc-s3-access-keys", PolicyArn=f"arn:aws:iam::{CM}:policy/atc-s3-policy")
    calls = watch(base)

    result = run_changes(base, request_for(s3AccountId=CM))

    assert result["verify"]["verified"] is True
    assert result["verify"]["roleArn"] == f"arn:aws:iam::{CM}:role/atc-s3-access-keys"
    assert calls.writes == ["CreatePolicy", "AttachRolePolicy", "CreateSecret", "UpdateAssumeRolePolicy"]


def test_a_removed_grant_comes_back_with_the_stored_id_read_once(base):
    seed_documented_prerequisites()
    run_changes(base, request_for())
    s3_iam = iam_in(S3)
    stored = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId="atc-xaccount/demo-cluster-1/external-id"
    )["SecretString"]
    s3_iam.update_assume_role_policy(RoleName="atc-s3-access-keys", PolicyDocument=json.dumps(EC2_TRUST))

    pre = preflight.preflight(request_for(), step_context(base))
    calls = watch(base)
    trust = converge.merge_trust(request_for(), step_context(base), plan=pre["plan"])

    assert pre["changesNeeded"] == ["trust"]
    assert trust["action"] == "updated" and trust["externalId"]["action"] == "unchanged"
    assert calls.operations.count("GetSecretValue") == 1, calls.operations
    document = s3_iam.get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]
    assert evaluate_trust(document, NODE_ARN, stored).allowed
