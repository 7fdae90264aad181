"""An AccessDenied of a target account's automation role becomes AutomationRoleDenied,
naming the bootstrap parameter (and value) the request needs."""

from __future__ import annotations

import contextvars

import pytest
from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import translate
from atc_xaccount.bootstrap_names import expect
from atc_xaccount.errors import AutomationRoleDenied, AwsOperationFailed

CM, S3 = "111111111111", "222222222222"
NAMES = [
    ("NodeRoleName", "role", CM, "atc-transfer-node"),
    ("AssumePolicyName", "policy", CM, "atc-transfer-assume"),
    ("AccessRoleName", "role", S3, "atc-transfer-access"),
    ("AccessPolicyName", "policy", S3, "atc-transfer-s3-policy"),
]
USER = "User: arn:aws:sts::{a}:assumed-role/atc-xaccount-automation/atc-xaccount-x"


def _denied(account: str, action: str, resource: str, code: str = "AccessDenied") -> ClientError:
    message = (
        f"{USER.format(a=account)} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
    return ClientError({"Error": {"Code": code, "Message": message}}, action.split(":")[1])


def _in_step(call):  # a fresh context, as each Lambda invocation sets its own names
    return contextvars.Context().run(call)


@pytest.mark.parametrize(
    ("account", "action", "resource", "parameter", "value"),
    [
        (CM, "iam:GetRole", f"arn:aws:iam::{CM}:role/atc-transfer-node", "NodeRoleName", "atc-transfer-node"),
        (
            CM,
            "iam:GetPolicy",
            f"arn:aws:iam::{CM}:policy/atc-transfer-assume",
            "AssumePolicyName",
            "atc-transfer-assume",
        ),
        (S3, "iam:GetRole", "role atc-transfer-access", "AccessRoleName", "atc-transfer-access"),
        (
            S3,
            "iam:GetPolicy",
            f"policy arn:aws:iam::{S3}:policy/atc-transfer-s3-policy",
            "AccessPolicyName",
            "atc-transfer-s3-policy",
        ),
    ],
)
def test_the_denied_resource_names_its_parameter(account, action, resource, parameter, value):
    def run() -> Exception:
        expect(NAMES)
        return translate(_denied(account, action, resource), action, account)

    error = _in_step(run)
    assert isinstance(error, AutomationRoleDenied)
    assert (error.account, error.action, error.parameter, error.value) == (account, action, parameter, value)
    assert f"{parameter}={value}" in str(error) and f"account {account}" in str(error)


def test_a_role_of_the_other_account_is_not_taken_for_this_one():
    """The S3 account's role name in the cluster manager account is not the access role."""

    def run() -> Exception:
        expect(NAMES)
        return translate(_denied(CM, "iam:GetRole", f"arn:aws:iam::{CM}:role/atc-transfer-access"), "GetRole", CM)

    error = _in_step(run)
    assert isinstance(error, AutomationRoleDenied) and error.parameter is None
    assert "check the parameters" in str(error)


def test_the_automation_account_s_own_denials_stay_aws_operation_failures():
    error = translate(
        _denied(CM, "dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/T", "AccessDeniedException"),
        "dynamodb:GetItem",
        "automation",
    )
    assert isinstance(error, AwsOperationFailed) and error.code == "AccessDeniedException"


def test_a_denial_without_a_resource_still_names_the_account_and_action():
    exc = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "User: x is not authorized to perform: iam:GetRole"}}, "GetRole"
    )
    error = _in_step(lambda: translate(exc, "iam:GetRole", CM))
    assert isinstance(error, AutomationRoleDenied)
    assert (error.action, error.resource, error.parameter) == ("iam:GetRole", "its resource", None)
