"""The template's part of the Node API option (issue 19): secrets by prefix, optional VPC, no widening."""

from __future__ import annotations

from typing import Any

import pytest

from atc_xaccount.evaluate import evaluate_identity
from atc_xaccount.steps import access_key
from tests.deploy.conftest import ACCOUNT, deployed_resolver, resources_of

STEPS = ("EnsureAccessKeyFunction", "DeleteAccessKeyFunction", "RotateAccessKeyFunction")
VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from atc_xaccount_cli.local.template import load_yaml
    from tests.deploy.conftest import TEMPLATE

    return load_yaml(TEMPLATE)


def test_the_steps_read_node_api_users_only_under_the_prefix_of_this_account_and_region(template):
    policy = template["Resources"]["NodeApiUserReadPolicy"]["Properties"]["PolicyDocument"]
    resolved = deployed_resolver(template).resolve(policy)
    prefix = template["Parameters"]["NodeApiSecretPrefix"]["Default"]
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{prefix}demo-cluster-1-AbCdEf"
    assert evaluate_identity([resolved], "secretsmanager:GetSecretValue", secret).allowed
    for other in (
        secret.replace(prefix, "atc-xaccount/"),
        secret.replace("us-east-1", "eu-west-1"),
        secret.replace(ACCOUNT, "999999999999"),
    ):
        assert not evaluate_identity([resolved], "secretsmanager:GetSecretValue", other).allowed, other
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["NODE_API_SECRET_PREFIX"] == {"Ref": "NodeApiSecretPrefix"}
    assert env["DEPLOYMENT_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}


def test_only_the_node_api_steps_may_run_in_a_vpc_and_only_when_subnets_are_given(template):
    functions = resources_of(template, "AWS::Serverless::Function")
    assert sorted(f for f, r in functions.items() if "VpcConfig" in r["Properties"]) == sorted(STEPS)
    for step in STEPS:
        props = functions[step]["Properties"]
        condition, in_vpc, outside = props["VpcConfig"]["Fn::If"]
        assert condition == "HasNodeApiVpc" and outside == {"Ref": "AWS::NoValue"}
        assert in_vpc == {
            "SubnetIds": {"Ref": "NodeApiSubnetIds"},
            "SecurityGroupIds": {"Ref": "NodeApiSecurityGroupIds"},
        }
        assert props["PermissionsBoundary"] == {
            "Fn::If": ["HasNodeApiVpc", {"Ref": "AWS::NoValue"}, {"Ref": "NodeApiStepsBoundary"}]
        }


def test_outside_a_vpc_the_boundary_takes_sams_vpc_permissions_away_and_nothing_else(template):
    boundary = template["Resources"]["NodeApiStepsBoundary"]["Properties"]["PolicyDocument"]
    for action in VPC_ACTIONS:
        assert not evaluate_identity([boundary], action, "*").allowed, action
    from tests.deploy.test_step_policies import EXPECTED

    for step in STEPS:
        for action, _, _ in EXPECTED[step]:
            assert evaluate_identity([boundary], action, "*").allowed, (step, action)
    for action in ("logs:PutLogEvents", "xray:PutTraceSegments"):
        assert evaluate_identity([boundary], action, "*").allowed, action


def test_the_browse_retries_fit_in_the_steps_timeout(template):
    timeout = min(
        template["Resources"][step]["Properties"]["Timeout"]
        for step in ("EnsureAccessKeyFunction", "RotateAccessKeyFunction")
    )
    import os

    saved = os.environ.pop("ATC_RETRY_BASE_SECONDS", None)
    try:
        waited = sum(access_key.browse_delays())
    finally:
        if saved is not None:
            os.environ["ATC_RETRY_BASE_SECONDS"] = saved
    # The waits, a first attempt and the Node API's answers (its own timeout per browse) stay inside.
    assert 45 <= waited < timeout / 2, (waited, timeout)
