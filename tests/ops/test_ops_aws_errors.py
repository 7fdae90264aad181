"""AWS error codes moto cannot produce, stubbed: each becomes the named error the ASL retries or catches."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from atc_xaccount import iam_ops
from atc_xaccount.aws_errors import RETRY_ATTEMPTS, RETRY_BASE_ENV, aws_call, translate
from atc_xaccount.errors import (
    AwsOperationFailed,
    IamConcurrentModification,
    IamPropagationDelay,
    IamThrottled,
)
from atc_xaccount.redact import Fingerprints
from tests.ops.conftest import CM, REGION, S3

TRUST = {"Version": "2012-10-17", "Statement": []}


@pytest.fixture
def iam() -> Any:
    return boto3.client("iam", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


CASES = [
    pytest.param("Throttling", "Rate exceeded", IamThrottled, {}, id="throttling"),
    pytest.param(
        "ConcurrentModification",
        "Cannot perform the operation due to a concurrent modification",
        IamConcurrentModification,
        {},
        id="concurrent-modification",
    ),
    pytest.param(
        "MalformedPolicyDocument",
        'Invalid principal in policy: "AWS":"arn:aws:iam::111111111111:role/atc-node"',
        IamPropagationDelay,
        {},
        id="invalid-principal-is-propagation",
    ),
    pytest.param(
        "MalformedPolicyDocument",
        "Syntax errors in policy.",
        AwsOperationFailed,
        {"code": "MalformedPolicyDocument"},
        id="other-malformed-document",
    ),
    pytest.param(
        "LimitExceeded",
        "Cannot exceed quota for ACLSizePerRole: 2048",
        AwsOperationFailed,
        {"code": "LimitExceeded", "aws_message": "Cannot exceed quota for ACLSizePerRole: 2048"},
        id="limit-exceeded",
    ),
]


@pytest.mark.parametrize(("code", "message", "expected", "attrs"), CASES)
def test_trust_write_failure_becomes_the_named_error(iam, monkeypatch, code, message, expected, attrs):
    monkeypatch.setenv(RETRY_BASE_ENV, "0")
    # "Invalid principal" is IAM's eventual consistency: retried in the step before it is raised.
    answers = RETRY_ATTEMPTS if expected is IamPropagationDelay else 1
    after = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    with Stubber(iam) as stub:
        for _ in range(answers):
            stub.add_client_error(
                "update_assume_role_policy", service_error_code=code, service_message=message, http_status_code=400
            )
        with pytest.raises(expected) as info:
            iam_ops.write_trust_policy(
                iam, S3, role_name="atc-s3-access-keys", before=TRUST, after=after, fingerprints=Fingerprints(b"k")
            )

    error = info.value
    assert type(error) is expected
    assert error.operation == "iam:UpdateAssumeRolePolicy"
    assert error.account == S3
    assert S3 in str(error)
    for name, value in attrs.items():
        assert getattr(error, name) == value
    assert isinstance(error.__cause__, ClientError)
    assert error.__cause__.response["Error"]["Code"] == code


@pytest.mark.parametrize(("code", "message", "expected", "attrs"), CASES)
def test_aws_call_translates_and_chains(iam, code, message, expected, attrs):
    with Stubber(iam) as stub:
        stub.add_client_error("create_policy", service_error_code=code, service_message=message)
        with pytest.raises(expected) as info, aws_call("iam:CreatePolicy", CM):
            iam.create_policy(PolicyName="atc-s3-assume-role", PolicyDocument="{}")

    assert type(info.value) is expected
    assert (info.value.operation, info.value.account) == ("iam:CreatePolicy", CM)
    assert isinstance(info.value.__cause__, ClientError)


def test_limit_exceeded_message_keeps_the_aws_code_and_text():
    exc = ClientError(
        {"Error": {"Code": "LimitExceeded", "Message": "Cannot exceed quota for PolicyVersionsPerPolicy: 5"}},
        "CreatePolicyVersion",
    )

    error = translate(exc, "iam:CreatePolicyVersion", CM)

    assert str(error) == (
        f"iam:CreatePolicyVersion failed in account {CM}: LimitExceeded: "
        "Cannot exceed quota for PolicyVersionsPerPolicy: 5"
    )


def test_reads_treat_no_such_entity_as_absent_and_translate_the_rest(iam):
    with Stubber(iam) as stub:
        stub.add_client_error("get_role", service_error_code="NoSuchEntity", http_status_code=404)
        stub.add_client_error("get_policy", service_error_code="NoSuchEntity", http_status_code=404)
        stub.add_client_error("get_role", service_error_code="Throttling", http_status_code=400)
        assert iam_ops.get_role(iam, S3, "atc-s3-access-keys") is None
        assert iam_ops.get_policy_state(iam, CM, f"arn:aws:iam::{CM}:policy/atc-s3-assume-role") is None
        with pytest.raises(IamThrottled) as info:
            iam_ops.get_role(iam, S3, "atc-s3-access-keys")

    assert info.value.operation == "iam:GetRole"
    assert isinstance(info.value.__cause__, ClientError)


# --- one retry layer per concern (issue 16 item 6) ----------------------------------------


@pytest.mark.parametrize("code", ["Throttling", "ConcurrentModification", "ServiceFailure"])
def test_an_undo_s_throttled_call_is_sent_once_by_the_step(iam, monkeypatch, code):
    """botocore's standard mode retries throttling on every call and the state machine retries
    the step; compensation's own retries on top made 5 x 5 x 6 attempts of one call."""
    from atc_xaccount.sessions import CLIENT_RETRIES, client_config

    monkeypatch.setenv(RETRY_BASE_ENV, "0")
    arn = f"arn:aws:iam::{CM}:policy/atc-s3-assume-role"
    with Stubber(iam) as stub:
        stub.add_client_error("list_policy_versions", service_error_code=code, http_status_code=400)
        with pytest.raises((IamThrottled, IamConcurrentModification, AwsOperationFailed)):
            iam_ops.ensure_policy_version_document(iam, CM, arn=arn, document=TRUST)
        stub.assert_no_pending_responses()  # the one answer was asked for, and no retry

    assert CLIENT_RETRIES == {"mode": "standard", "max_attempts": 5}
    assert client_config().retries["mode"] == "standard", "every client the steps make retries throttling"


def test_the_last_eventual_consistency_answer_is_the_error_the_state_machines_retry(iam, monkeypatch):
    monkeypatch.setenv(RETRY_BASE_ENV, "0")
    with Stubber(iam) as stub:
        for _ in range(RETRY_ATTEMPTS):
            stub.add_client_error("attach_role_policy", service_error_code="NoSuchEntity", http_status_code=404)
        with pytest.raises(IamPropagationDelay) as info:
            iam_ops.attach(
                iam, CM, role_name="atc-node", policy_arn=f"arn:aws:iam::{CM}:policy/p", needed=True, just_created=True
            )
    assert "a policy created a moment ago is not attachable yet" in str(info.value)


def test_eventual_consistency_is_retried_only_while_the_lambda_has_time_left(iam, monkeypatch):
    from atc_xaccount.aws_errors import RETRY_RESERVE_SECONDS, set_deadline

    monkeypatch.setenv(RETRY_BASE_ENV, "0")
    set_deadline((RETRY_RESERVE_SECONDS - 1) * 1000)
    try:
        with Stubber(iam) as stub:
            stub.add_client_error("attach_role_policy", service_error_code="NoSuchEntity", http_status_code=404)
            with pytest.raises(IamPropagationDelay):
                iam_ops.attach(
                    iam,
                    CM,
                    role_name="atc-node",
                    policy_arn=f"arn:aws:iam::{CM}:policy/p",
                    needed=True,
                    just_created=True,
                )
            stub.assert_no_pending_responses()  # one attempt: no time for another
    finally:
        set_deadline(None)
