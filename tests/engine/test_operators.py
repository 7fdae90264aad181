"""Operators read, workflows write (issue 15 items 7 and 9), on the emulator: every AssumeRole
is judged by the target role's trust policy; the operators' read-only role admits only
OperatorPrincipalArns and can change nothing; the automation role admits only step roles."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from atc_xaccount_cli.local import authz
from atc_xaccount_cli.local.engine import Emulator
from atc_xaccount_cli.local.run import run_event
from atc_xaccount_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CM, S3, AUTOMATION = "111111111111", "222222222222", "123456789012"
EVENT = json.loads((ROOT / "events" / "cluster-registered.json").read_text())
SSO_PATTERN = f"arn:aws:iam::{AUTOMATION}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_AtcOperators_*"
SSO_OPERATOR = (
    f"arn:aws:iam::{AUTOMATION}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_AtcOperators_1a2b"
)
INTRUDER = f"arn:aws:iam::{AUTOMATION}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Developers_9z8y"


@pytest.fixture(scope="module")
def onboarded() -> dict[str, Any]:
    report = run_event(ROOT, EVENT, json.loads((ROOT / "events" / "sample-world.json").read_text()), prove=False)
    assert report.result.status == "SUCCEEDED", report.cause_message
    return report.world


def doctor(tmp_path: Path, world: dict[str, Any]) -> tuple[int, Any]:
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    out = io.StringIO()
    code = main(["local", "doctor", "demo-cluster-1", "--world", str(path), "--json"], out=out)
    return code, json.loads(out.getvalue())


def with_operators(world: dict[str, Any], pattern: str, operator: str) -> dict[str, Any]:
    """Both target accounts' stack instances name `pattern`; the world's operator is `operator`."""
    world = copy.deepcopy(world)
    for account in (CM, S3):
        world["accounts"][account]["bootstrap"] = {"OperatorPrincipalArns": pattern}
    world["operator"] = {"principalArn": operator}
    return world


def test_an_operator_in_operator_principal_arns_runs_the_doctor(tmp_path, onboarded):
    code, body = doctor(tmp_path, with_operators(onboarded, SSO_PATTERN, SSO_OPERATOR))

    assert code == 0, body
    assert {link["verdict"] for link in body["links"]} == {"ok"}


def test_an_operator_not_in_operator_principal_arns_cannot_assume_the_read_role(tmp_path, onboarded):
    code, body = doctor(tmp_path, with_operators(onboarded, SSO_PATTERN, INTRUDER))

    assert code == 1, body
    assert body["error"] == "AutomationRoleUnavailable"
    assert "atc-xaccount-read" in body["message"] and "not authorized to perform: sts:AssumeRole" in body["message"]
    assert INTRUDER in body["message"]


def test_the_read_role_reads_and_writes_nothing_and_the_automation_role_refuses_operators(onboarded):
    with Emulator(ROOT) as emulator:
        emulator.seed(onboarded)
        operator = emulator.operator_session()
        sts = operator.client("sts")
        reader = sts.assume_role(RoleArn=f"arn:aws:iam::{S3}:role/atc-xaccount-read", RoleSessionName="ops")
        creds = reader["Credentials"]
        iam = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name="us-east-1",
        ).client("iam")
        trust = iam.get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]
        with pytest.raises(ClientError) as refused:
            iam.update_assume_role_policy(RoleName="atc-s3-access-keys", PolicyDocument=json.dumps(trust))
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(ClientError) as automation:
            sts.assume_role(RoleArn=f"arn:aws:iam::{S3}:role/atc-xaccount-automation", RoleSessionName="ops")
        assert "not authorized to perform: sts:AssumeRole" in automation.value.response["Error"]["Message"]


def test_step_roles_of_another_stack_cannot_assume_the_automation_role():
    """A bootstrap role trusting another stack's step roles refuses this stack's: judged by its trust."""

    def other_stack(role: authz.BootstrapRole) -> authz.BootstrapRole:
        trust = json.loads(json.dumps(role.trust).replace("role/atc-xaccount-*", "role/other-stack-*"))
        return replace(role, trust=trust)

    with authz.enforcing(mutate=other_stack):
        report = run_event(ROOT, EVENT, json.loads((ROOT / "events" / "sample-world.json").read_text()), prove=False)

    assert report.result.error == "AutomationRoleUnavailable", report.cause_message
    assert "atc-xaccount-PreflightFunctionRole-LOCAL" in report.cause_message
    assert report.calls["writes"] == 0
