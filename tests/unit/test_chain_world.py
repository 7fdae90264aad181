"""The world format's keys for the access chain: refused when malformed, and seeded then snapshotted unchanged."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from atc_xaccount_cli.local.world import WorldError, account_session, seed_account, snapshot_account, validate_world

ROOT = Path(__file__).resolve().parents[2]
CM, S3 = "111111111111", "222222222222"
BUCKET = "atc-demo-transfers"


def kms_world() -> dict[str, Any]:
    return json.loads((ROOT / "events" / "sample-world-kms.json").read_text())


def chain_world() -> dict[str, Any]:
    world = kms_world()
    s3 = world["accounts"][S3]
    role = s3["roles"]["atc-s3-access-keys"]
    role["inline"] = {"guardrails": {"Version": "2012-10-17", "Statement": [
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}}  # fmt: skip
    role["boundary"] = f"arn:aws:iam::{S3}:policy/atc-s3-policy"
    role["maxSessionDuration"] = 7200
    insecure = {"Bool": {"aws:SecureTransport": "false"}}
    s3["bucketPolicies"] = {BUCKET: {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": f"arn:aws:s3:::{BUCKET}/*", "Condition": insecure}]}}  # fmt: skip
    s3["organizationId"] = "o-a1b2c3d4e5"
    return world


def test_the_chain_world_is_valid():
    validate_world(chain_world())


def _break(path: list[str], value: Any) -> dict[str, Any]:
    world = chain_world()
    target = world["accounts"][S3]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return world


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (["roles", "atc-s3-access-keys", "inline"], ["not", "an", "object"], "roles.atc-s3-access-keys.inline"),
        (["roles", "atc-s3-access-keys", "boundary"], f"arn:aws:iam::{S3}:policy/nowhere", "boundary"),
        (["roles", "atc-s3-access-keys", "maxSessionDuration"], 600, "maxSessionDuration"),
        (["bucketPolicies", "not-a-bucket-here"], {"Statement": []}, "bucketPolicies.not-a-bucket-here"),
        (["bucketEncryption", BUCKET, "SSEAlgorithm"], "rot13", "SSEAlgorithm"),
        (["bucketEncryption", BUCKET, "KMSMasterKeyID"], "alias/unknown", "KMSMasterKeyID"),
        (["kmsKeys", "aws/s3"], {"policy": {}}, "kmsKeys.aws/s3"),
        (["kmsKeys", "no-policy"], {}, "kmsKeys.no-policy"),
        (["organizationId"], "my-org", "organizationId"),
    ],
)
def test_a_malformed_chain_key_is_refused_naming_it(path, value, named):
    with pytest.raises(WorldError, match=re.escape(named)):
        validate_world(_break(path, value))


@mock_aws
def test_seeded_chain_keys_come_back_from_the_snapshot():
    world = chain_world()
    state = world["accounts"][S3]
    session = account_session(S3, "us-east-1", "atc-xaccount-local-admin")
    seed_account(session, S3, state, "aws")
    snapped = snapshot_account(session, skip_roles=set(), secret_prefix=None)

    expected = copy.deepcopy(state)
    expected.pop("organizationId")  # what Organizations answers is not IAM or S3 state
    assert snapped["roles"] == expected["roles"]
    assert snapped["bucketPolicies"] == expected["bucketPolicies"]
    assert snapped["bucketEncryption"] == expected["bucketEncryption"]
    assert snapped["kmsKeys"] == {"atc-demo-transfers": {"policy": expected["kmsKeys"]["atc-demo-transfers"]["policy"]}}
