"""Onboarding through the real state machine on the embedded emulator."""

from __future__ import annotations

import copy
import json
from typing import Any

from atc_xaccount.evaluate import evaluate_trust
from tests.engine.conftest import CM, S3, admitting, iam_writes, onboard, trust_of, with_detail, without_secrets

NODE_ARN = f"arn:aws:iam::{CM}:role/atc-node"
ACCESS_ARN = f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
SECRET = "atc-xaccount/demo-cluster-1/external-id"
AUTOMATION = "123456789012"


def external_id(world: dict[str, Any], cluster: str = "demo-cluster-1") -> str:
    return world["accounts"][AUTOMATION]["secrets"][f"atc-xaccount/{cluster}/external-id"]


def test_fresh_onboarding_makes_exactly_the_three_changes(registered_event, sample_world):
    report = onboard(registered_event, sample_world)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert iam_writes(report) == {
        "iam:CreatePolicy": 1,
        "iam:AttachRolePolicy": 1,
        "iam:UpdateAssumeRolePolicy": 1,
    }
    cm = report.world["accounts"][CM]
    assert cm["policies"]["atc-s3-assume-role"] == {
        "document": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AtcXaccountAssumeAccessRoles",
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": [ACCESS_ARN],
                }
            ],
        },
        "versions": 1,
    }
    assert cm["roles"]["atc-node"]["attached"] == [f"arn:aws:iam::{CM}:policy/atc-s3-assume-role"]

    ext_id = external_id(report.world)
    assert len(ext_id) >= 32
    before = trust_of(sample_world)["Statement"]
    after = trust_of(report.world)["Statement"]
    assert after[: len(before)] == before, "the EC2 and partner statements must stay exactly as they were"
    assert len(after) == len(before) + 1
    grant = after[-1]
    assert grant["Principal"] == {"AWS": NODE_ARN}
    assert grant["Condition"] == {"StringEquals": {"sts:ExternalId": ext_id}}
    assert report.proof is not None and report.proof.ok


def test_external_id_never_leaves_its_secret(registered_event, sample_world):
    report = onboard(registered_event, sample_world)
    ext_id = external_id(report.world)

    assert ext_id not in json.dumps(report.result.output)
    assert ext_id not in json.dumps(report.events)
    ready = [e for e in report.events if e["detail-type"] == "Cluster S3 Access Ready"]
    assert len(ready) == 1
    assert ready[0]["detail"]["roleArn"] == ACCESS_ARN
    assert ready[0]["detail"]["externalIdSecretArn"].startswith(
        f"arn:aws:secretsmanager:us-east-1:{AUTOMATION}:secret:{SECRET}"
    )


def test_rerun_on_the_resulting_world_writes_nothing(registered_event, sample_world):
    first = onboard(registered_event, sample_world, prove=False)
    second = onboard(registered_event, first.world, prove=False)

    assert second.result.status == "SUCCEEDED", second.cause_message
    assert second.calls["writes"] == 0, second.calls
    assert second.world == first.world


def test_manual_execution_with_only_the_detail(registered_event, sample_world):
    report = onboard(registered_event["detail"], sample_world, prove=False)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert report.executions[0].rule.startswith("manual execution")


def test_invalid_event_fails_in_validation_with_no_call(registered_event, sample_world):
    event = with_detail(registered_event, s3AccountId="22222222222x", bogus="x")
    report = onboard(event, sample_world)

    assert report.result.status == "FAILED"
    assert report.result.error == "InvalidEvent"
    assert "detail.s3AccountId" in report.cause_message
    assert "detail.bogus" in report.cause_message
    assert report.calls["total"] == 0
    assert without_secrets(report.world) == sample_world["accounts"]
    assert [s.name for s in report.result.states][:1] == ["Validate"]
    failed = [e for e in report.events if e["detail-type"] == "Cluster S3 Access Failed"]
    assert failed and failed[0]["detail"]["error"] == "InvalidEvent"


def test_missing_access_role_fails_before_any_write(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    del world["accounts"][S3]["roles"]["atc-s3-access-keys"]
    report = onboard(registered_event, world)

    assert report.result.status == "FAILED"
    assert report.result.error == "PrerequisiteMissing"
    assert "atc-s3-access-keys" in report.cause_message and S3 in report.cause_message
    assert report.calls["writes"] == 0, report.calls
    assert without_secrets(report.world) == world["accounts"]


def test_missing_node_role_fails_before_any_write(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    del world["accounts"][CM]["roles"]["atc-node"]
    report = onboard(registered_event, world)

    assert report.result.error == "PrerequisiteMissing"
    assert "atc-node" in report.cause_message and CM in report.cause_message
    assert report.calls["writes"] == 0


def test_access_policy_not_attached_fails_before_any_write(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    world["accounts"][S3]["roles"]["atc-s3-access-keys"]["attached"] = []
    report = onboard(registered_event, world)

    assert report.result.error == "PrerequisiteMissing"
    assert "atc-s3-policy" in report.cause_message
    assert report.calls["writes"] == 0


def test_trust_policy_over_its_quota_fails_before_any_write(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    # A partner grant with a long external ID leaves less room than the new grant needs.
    trust = world["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"]
    trust["Statement"].append(
        {
            "Sid": "BigPartner",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "p" * 1500}},
        }
    )
    world["accounts"][S3]["quotas"] = {"AssumeRolePolicySizeQuota": 2048}
    report = onboard(registered_event, world)

    assert report.result.error == "QuotaExceeded"
    assert "AssumeRolePolicySizeQuota" in report.cause_message and S3 in report.cause_message
    assert "atc-s3-access-keys" in report.cause_message and "2048" in report.cause_message
    assert report.calls["writes"] == 0
    del world["accounts"][S3]["quotas"]
    assert without_secrets(report.world) == world["accounts"]


def test_same_account_for_cluster_manager_and_s3(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    world["accounts"][S3]["roles"]["atc-node"] = world["accounts"][CM]["roles"]["atc-node"]
    del world["accounts"][CM]
    event = with_detail(registered_event, clusterManagerAccountId=S3)
    report = onboard(event, world, parameters=admitting(f"{S3}:{S3}"))

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert len(iam_writes(report)) == 3
    assert report.calls["by_operation"].get("sts:AssumeRole", 0) <= 7
    grant = trust_of(report.world)["Statement"][-1]
    assert grant["Principal"] == {"AWS": f"arn:aws:iam::{S3}:role/atc-node"}
    assert report.proof is not None and report.proof.ok


def test_second_cluster_keeps_the_first_clusters_grant(registered_event, sample_world):
    first = onboard(registered_event, sample_world, prove=False)
    second = onboard(with_detail(registered_event, clusterId="demo-cluster-2"), first.world)

    assert second.result.status == "SUCCEEDED", second.cause_message
    trust = trust_of(second.world)
    for cluster in ("demo-cluster-1", "demo-cluster-2"):
        assert evaluate_trust(trust, NODE_ARN, external_id(second.world, cluster)).allowed
    assert trust["Statement"][:2] == trust_of(sample_world)["Statement"]
    assert iam_writes(second) == {"iam:UpdateAssumeRolePolicy": 1}


def test_second_cluster_manager_account_adds_its_own_grant(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    world["accounts"]["444444444444"] = copy.deepcopy(world["accounts"][CM])
    pairs = admitting(f"{CM}:{S3}", f"444444444444:{S3}")
    first = onboard(registered_event, world, prove=False, parameters=pairs)
    event = with_detail(registered_event, clusterId="other-cluster", clusterManagerAccountId="444444444444")
    second = onboard(event, first.world, parameters=pairs)

    assert second.result.status == "SUCCEEDED", second.cause_message
    trust = trust_of(second.world)
    assert evaluate_trust(trust, NODE_ARN, external_id(second.world)).allowed
    assert evaluate_trust(
        trust, "arn:aws:iam::444444444444:role/atc-node", external_id(second.world, "other-cluster")
    ).allowed
    assert not evaluate_trust(trust, "arn:aws:iam::444444444444:role/atc-node", external_id(second.world)).allowed, (
        "one cluster's external ID must not open the door for another account"
    )


def test_custom_role_and_policy_names_from_the_event(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    cm, s3 = world["accounts"][CM], world["accounts"][S3]
    cm["roles"]["atc-node-blue"] = cm["roles"].pop("atc-node")
    role = s3["roles"].pop("atc-s3-access-keys")
    role["attached"] = [f"arn:aws:iam::{S3}:policy/atc-s3-policy-blue"]
    s3["roles"]["atc-s3-access-keys-blue"] = role
    s3["policies"]["atc-s3-policy-blue"] = s3["policies"].pop("atc-s3-policy")
    event = with_detail(
        registered_event,
        nodeRoleName="atc-node-blue",
        accessRoleName="atc-s3-access-keys-blue",
        assumePolicyName="atc-s3-assume-role-blue",
        accessPolicyName="atc-s3-policy-blue",
    )
    # The bootstrap role names exact roles and policies: deploy it (and the stack) with these.
    names = {
        "NodeRoleName": "atc-node-blue",
        "AccessRoleName": "atc-s3-access-keys-blue",
        "AssumePolicyName": "atc-s3-assume-role-blue",
        "AccessPolicyName": "atc-s3-policy-blue",
    }
    report = onboard(event, world, parameters=names)

    assert report.result.status == "SUCCEEDED", report.cause_message
    after_cm = report.world["accounts"][CM]
    assert after_cm["roles"]["atc-node-blue"]["attached"] == [f"arn:aws:iam::{CM}:policy/atc-s3-assume-role-blue"]
    assert after_cm["policies"]["atc-s3-assume-role-blue"]["document"]["Statement"][0]["Resource"] == [
        f"arn:aws:iam::{S3}:role/atc-s3-access-keys-blue"
    ]
    assert report.proof is not None and report.proof.ok


def test_external_id_from_the_event_is_used_and_kept(registered_event, sample_world):
    event = with_detail(registered_event, externalId="operator-chosen-id:2026/11")
    report = onboard(event, sample_world)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert external_id(report.world) == "operator-chosen-id:2026/11"
    grant = trust_of(report.world)["Statement"][-1]
    assert grant["Condition"]["StringEquals"]["sts:ExternalId"] == "operator-chosen-id:2026/11"


def test_existing_policy_with_five_versions_is_rotated_keeping_foreign_statements(registered_event, sample_world):
    world = copy.deepcopy(sample_world)
    foreign = {"Sid": "OpsReadOnly", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    world["accounts"][CM]["policies"]["atc-s3-assume-role"] = {
        "document": {"Version": "2012-10-17", "Statement": [foreign]},
        "versions": 5,
    }
    world["accounts"][CM]["roles"]["atc-node"]["attached"] = [f"arn:aws:iam::{CM}:policy/atc-s3-assume-role"]
    report = onboard(registered_event, world)

    assert report.result.status == "SUCCEEDED", report.cause_message
    policy = report.world["accounts"][CM]["policies"]["atc-s3-assume-role"]
    assert policy["versions"] == 5
    assert policy["document"]["Statement"][0] == foreign
    assert iam_writes(report) == {
        "iam:DeletePolicyVersion": 1,
        "iam:CreatePolicyVersion": 1,
        "iam:UpdateAssumeRolePolicy": 1,
    }


def test_a_bucket_the_access_policy_does_not_grant_fails_before_any_write(registered_event, sample_world):
    """atc-s3-policy is the S3 account's to change, not ours: refuse, name the bucket, write nothing."""
    event = with_detail(registered_event, buckets=["atc-demo-transfers", "someone-elses-bucket"])
    report = onboard(event, sample_world, prove=False)

    assert report.result.status == "FAILED"
    assert report.result.error == "VerificationFailed"
    assert "someone-elses-bucket" in report.cause_message and S3 in report.cause_message
    assert "atc-demo-transfers" not in report.cause_message, "only the bucket that is not granted is named"
    assert report.calls["writes"] == 0
    assert without_secrets(report.world) == sample_world["accounts"]
