"""AccountSessions: one AssumeRole per account, CloudTrail-safe session names, named failures."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from atc_xaccount.errors import AutomationRoleUnavailable
from atc_xaccount.sessions import AccountSessions, session_name
from tests.ops.conftest import AUTOMATION_ROLE, CM, REGION, S3, create_automation_role, watch

#: AWS's RoleSessionName rule (its \w is ASCII-only), length 2-64.
ROLE_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")


def sessions_on(base: Any, execution: str | None = "exec-1") -> AccountSessions:
    return AccountSessions(
        automation_role_name=AUTOMATION_ROLE, partition="aws", region=REGION, execution=execution, base_session=base
    )


@pytest.mark.usefixtures("aws")
def test_each_account_is_assumed_once_however_many_clients():
    for account in (CM, S3):
        create_automation_role(account)
    base = boto3.Session(region_name=REGION)
    calls = watch(base)
    sessions = sessions_on(base)

    identities = {
        (service, account): sessions.client(service, account)
        for service in ("iam", "sts", "s3", "iam")
        for account in (CM, S3, CM)
    }
    accounts = {account: sessions.client("sts", account).get_caller_identity()["Account"] for account in (CM, S3)}
    sessions.client("iam", CM).list_roles()

    assumed = [params["RoleArn"] for params in calls.params_of("AssumeRole")]
    assert sorted(assumed) == sorted(f"arn:aws:iam::{account}:role/{AUTOMATION_ROLE}" for account in (CM, S3))
    assert accounts == {CM: CM, S3: S3}, "each client lands in its own account"
    assert sessions.client("iam", CM) is identities[("iam", CM)]


@pytest.mark.usefixtures("aws")
def test_role_session_name_is_sanitized_and_short_enough():
    create_automation_role(CM)
    base = boto3.Session(region_name=REGION)
    calls = watch(base)
    execution = "manual run: cluster/demo #1 " + "x" * 80

    sessions_on(base, execution).client("iam", CM)

    (params,) = calls.params_of("AssumeRole")
    name = params["RoleSessionName"]
    assert ROLE_SESSION_NAME.fullmatch(name), name
    assert name.startswith("atc-xaccount-manual-run--cluster-demo--1-")
    assert len(name) == 64
    assert params["DurationSeconds"] <= 3600


def test_session_name_without_execution_is_still_valid():
    assert ROLE_SESSION_NAME.fullmatch(session_name(None))


def test_session_name_of_a_non_ascii_execution_name_is_accepted_by_sts():
    assert ROLE_SESSION_NAME.fullmatch(session_name("überprüfung-café"))


class StubbedBase:
    """A base session whose STS client is stubbed: AccountSessions' only call is AssumeRole."""

    def __init__(self) -> None:
        self.sts = boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def client(self, service: str, **_: Any) -> Any:
        assert service == "sts", f"no {service} client expected before the role is assumed"
        return self.sts


def test_assume_role_refusal_names_the_account_and_role():
    base = StubbedBase()
    role = f"arn:aws:iam::{S3}:role/{AUTOMATION_ROLE}"
    sessions = sessions_on(base)
    with Stubber(base.sts) as stub:
        stub.add_client_error(
            "assume_role",
            service_error_code="AccessDenied",
            service_message="User is not authorized to perform: sts:AssumeRole",
            http_status_code=403,
            expected_params={"RoleArn": role, "RoleSessionName": ANY, "DurationSeconds": ANY},
        )
        with pytest.raises(AutomationRoleUnavailable) as info:
            sessions.client("iam", S3)
        stub.assert_no_pending_responses()

    error = info.value
    assert error.account == S3
    assert error.role_arn == role
    assert S3 in str(error) and role in str(error)
    assert "AccessDenied" in str(error)
    assert isinstance(error.__cause__, ClientError)
