"""The step roles assume the automation role only where the deployment works (issue 15 item 4):
the accounts AllowedAccountPairs names and, with an organization configured, its accounts
(aws:ResourceAccount, aws:ResourceOrgID). A same-named role of a foreign account is refused
by the step's own role, as IAM would, before the request leaves the automation account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from atc_xaccount_cli.local.engine import Emulator

ROOT = Path(__file__).resolve().parents[2]
CM, S3, FOREIGN, MEMBER = "111111111111", "222222222222", "999999999999", "888888888888"
ORG = "o-abcdefghij"


def assume(emulator: Emulator, account: str, function: str = "PreflightFunction") -> None:
    """The step's AssumeRole call as the step role judges it."""
    roles = emulator.step_roles
    assert roles is not None
    sts = boto3.client("sts", region_name="us-east-1")
    params: dict[str, Any] = {"RoleArn": f"arn:aws:iam::{account}:role/atc-xaccount-automation", "RoleSessionName": "s"}
    roles.judge(function, sts, "AssumeRole", params)


def test_only_the_accounts_of_the_pairs():
    with Emulator(ROOT, parameters={"AllowedAccountPairs": f"{CM}:{S3}"}) as paired:
        assume(paired, CM)
        assume(paired, S3)
        with pytest.raises(ClientError) as refused:
            assume(paired, FOREIGN)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert f"arn:aws:iam::{FOREIGN}:role/atc-xaccount-automation" in refused.value.response["Error"]["Message"]


def test_a_cm_star_pair_is_held_to_the_organization():
    parameters = {"AllowedAccountPairs": f"{CM}:*", "EventSourceOrganizationId": ORG}
    with Emulator(ROOT, parameters=parameters) as organization:
        organization.seed({"accounts": {MEMBER: {"organizationId": ORG}, FOREIGN: {"organizationId": "o-zzzzzzzzzz"}}})
        assume(organization, MEMBER)
        for outside in (FOREIGN, "777777777777"):  # another organization's, and one of none known
            with pytest.raises(ClientError):
                assume(organization, outside)


def test_an_empty_list_assumes_nowhere():
    with Emulator(ROOT, parameters={"AllowedAccountPairs": ""}) as emulator, pytest.raises(ClientError):
        assume(emulator, CM)
