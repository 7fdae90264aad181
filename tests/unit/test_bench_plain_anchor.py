"""The cold-start bench's plain-boto3 anchor replays a step's recorded calls faithfully (issue 12)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bench import worlds

ROOT = Path(__file__).resolve().parents[2]


def plain_app() -> Any:
    spec = importlib.util.spec_from_file_location("bench_plain_app", ROOT / "bench" / "plain" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(service: str, operation: str, params: dict[str, Any], key: str, error: str | None = None) -> dict[str, Any]:
    return {
        "service": service,
        "operation": operation,
        "region": "us-east-1",
        "params": params,
        "access_key": key,
        "error": error,
    }


def own_key() -> str:
    """The function's own access key (what mock_aws puts in the environment)."""
    return os.environ["AWS_ACCESS_KEY_ID"]


def test_replay_signs_with_the_replayed_assume_roles_credentials_and_expects_the_same_errors(aws: None) -> None:
    role = {"RoleArn": "arn:aws:iam::111111111111:role/x", "RoleSessionName": "step"}
    assume = call("sts", "AssumeRole", role, own_key())
    assume["issued_access_key"] = "ASIARECORDED"
    statement = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    calls = [
        call("secretsmanager", "GetSecretValue", {"SecretId": "absent"}, own_key(), "ResourceNotFoundException"),
        assume,
        call("iam", "CreatePolicy", {"PolicyName": "replayed", "PolicyDocument": document}, "ASIARECORDED"),
    ]
    assert plain_app().lambda_handler({"calls": calls}, None) == {"calls": 3}
    creds = boto3.client("sts").assume_role(RoleArn="arn:aws:iam::111111111111:role/y", RoleSessionName="test")
    iam = boto3.client(
        "iam",
        aws_access_key_id=creds["Credentials"]["AccessKeyId"],
        aws_secret_access_key=creds["Credentials"]["SecretAccessKey"],
        aws_session_token=creds["Credentials"]["SessionToken"],
    )
    assert iam.get_policy(PolicyArn="arn:aws:iam::111111111111:policy/replayed")["Policy"]["PolicyName"] == "replayed"


def test_replay_fails_when_a_call_does_not_fail_as_the_steps_did(aws: None) -> None:
    calls = [call("secretsmanager", "GetSecretValue", {"SecretId": "absent"}, own_key(), "AccessDeniedException")]
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        plain_app().lambda_handler({"calls": calls}, None)


def test_replay_refuses_credentials_no_replayed_call_issued(aws: None) -> None:
    calls = [call("iam", "ListRoles", {}, "ASIANEVERISSUED")]
    with pytest.raises(RuntimeError, match="no replayed call issued"):
        plain_app().lambda_handler({"calls": calls}, None)


def test_unmap_is_the_inverse_of_remap() -> None:
    text = json.dumps({"a": "arn:aws:iam::111111111111:role/atc-node", "b": "222222222222", "c": "demo-cluster-1/x"})
    names = ["demo-cluster-1", "atc-demo-transfers"]
    moved = worlds.remap_text(text, 71, 0, names)
    assert moved != text
    assert worlds.unmap_text(moved, 71, 0, names) == text
