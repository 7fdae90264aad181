"""Error classes: exact names (the ASL catches by name) and messages a person can act on."""

from __future__ import annotations

import json

import pytest

from atc_xaccount import errors
from atc_xaccount.errors import (
    AtcXaccountError,
    AutomationRoleDenied,
    AutomationRoleUnavailable,
    AwsOperationFailed,
    IamConcurrentModification,
    IamPropagationDelay,
    IamThrottled,
    InvalidEvent,
    PolicyLintFailed,
    PrerequisiteMissing,
    QuotaExceeded,
    VerificationFailed,
)

ASL_NAMES = {
    "InvalidEvent",
    "PrerequisiteMissing",
    "QuotaExceeded",
    "PolicyLintFailed",
    "AutomationRoleUnavailable",
    "AutomationRoleDenied",
    "IamThrottled",
    "IamConcurrentModification",
    "IamPropagationDelay",
    "AwsOperationFailed",
    "VerificationFailed",
    "ResourceLocked",
    "RegistrationMismatch",
    "OwnedStatementModified",
    "WouldWidenAccess",
    "UndoIncomplete",
    "CompensationIncomplete",
    "RequestNotAuthorized",
    "DeregistrationIncomplete",
    "NotRepairable",
    "ExternalIdSecretMismatch",
    # issue 18: time and group commit
    "StaleRead",
    "SecretDeletionPending",
    "CommitPending",
    "GroupCommitFailed",
    "UnsupportedRolePath",
    "NodeApiUnavailable",
    "NodeApiCredentialsInvalid",
    "AccessKeyRejected",
    "AccessKeyUnusable",
}


def test_class_names_match_the_state_machine_contract() -> None:
    found = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, AtcXaccountError) and obj is not AtcXaccountError
    }
    assert found == ASL_NAMES


def test_every_error_the_state_machines_retry_or_catch_by_name_exists() -> None:
    import json
    from pathlib import Path

    named: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "ErrorEquals":
                    named.update(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in (Path(__file__).resolve().parents[2] / "statemachine").glob("*.asl.json"):
        walk(json.loads(path.read_text()))
    ours = {n for n in named if not n.startswith(("States.", "Lambda.", "StepFunctions."))}
    assert ours and ours <= ASL_NAMES, ours - ASL_NAMES


@pytest.mark.parametrize(
    ("error", "message", "attrs"),
    [
        (
            InvalidEvent("detail.s3AccountId", "must be 12 digits"),
            "detail.s3AccountId: must be 12 digits",
            {"field": "detail.s3AccountId"},
        ),
        (
            PrerequisiteMissing("role", "atc-s3-access-keys", "222222222222"),
            "role atc-s3-access-keys does not exist in account 222222222222",
            {"resource_type": "role", "name": "atc-s3-access-keys", "account": "222222222222"},
        ),
        (
            QuotaExceeded(
                "ACLSizePerRole",
                "trust policy of role atc-s3-access-keys",
                "222222222222",
                2101,
                2048,
                "Service Quotas: IAM 'Role trust policy length'",
            ),
            "trust policy of role atc-s3-access-keys in account 222222222222 would need 2101 "
            "against the quota ACLSizePerRole of 2048; to raise it: Service Quotas: IAM "
            "'Role trust policy length'",
            {"quota": "ACLSizePerRole", "size": 2101, "limit": 2048},
        ),
        (
            PolicyLintFailed(
                "atc-s3-assume-role", "111111111111", [{"code": "INVALID_ARN", "message": "Does not have 6 parts"}]
            ),
            "policy atc-s3-assume-role in account 111111111111 failed lint with 1 error(s): "
            "INVALID_ARN: Does not have 6 parts",
            {"policy_name": "atc-s3-assume-role"},
        ),
        (
            AutomationRoleUnavailable(
                "222222222222", "arn:aws:iam::222222222222:role/atc-xaccount-automation", "AccessDenied"
            ),
            "cannot assume automation role arn:aws:iam::222222222222:role/atc-xaccount-automation "
            "in account 222222222222: AccessDenied",
            {"reason": "AccessDenied"},
        ),
        (
            AutomationRoleDenied(
                "111111111111",
                "iam:GetRole",
                "arn:aws:iam::111111111111:role/atc-transfer-node",
                "NodeRoleName",
                "atc-transfer-node",
                "User: ... is not authorized to perform: iam:GetRole",
            ),
            "the automation role in account 111111111111 may not call iam:GetRole on "
            "arn:aws:iam::111111111111:role/atc-transfer-node (AccessDenied): "
            "deploy that account's bootstrap stack instance "
            "(bootstrap/automation-role.yaml) with NodeRoleName=atc-transfer-node, e.g. aws cloudformation "
            "update-stack-instances --accounts 111111111111 --parameter-overrides "
            "ParameterKey=NodeRoleName,ParameterValue=atc-transfer-node ...",
            {"parameter": "NodeRoleName", "value": "atc-transfer-node", "action": "iam:GetRole"},
        ),
        (
            IamThrottled("UpdateAssumeRolePolicy", "222222222222"),
            "UpdateAssumeRolePolicy was throttled in account 222222222222",
            {"operation": "UpdateAssumeRolePolicy"},
        ),
        (
            IamConcurrentModification("CreatePolicyVersion", "111111111111"),
            "CreatePolicyVersion in account 111111111111 conflicted with a concurrent modification",
            {"operation": "CreatePolicyVersion"},
        ),
        (
            AwsOperationFailed("AttachRolePolicy", "111111111111", "AccessDenied", "not allowed"),
            "AttachRolePolicy failed in account 111111111111: AccessDenied: not allowed",
            {"code": "AccessDenied", "aws_message": "not allowed"},
        ),
        (
            VerificationFailed(
                "222222222222",
                [
                    {"check": "trust-admits-node", "ok": False, "detail": "implicitly denied"},
                    {"check": "policy-attached", "ok": True},
                ],
            ),
            "verification failed in account 222222222222: trust-admits-node (implicitly denied)",
            {"account": "222222222222"},
        ),
    ],
)
def test_messages_and_to_dict(error: AtcXaccountError, message: str, attrs: dict[str, object]) -> None:
    assert str(error) == message
    data = error.to_dict()
    assert data["error"] == type(error).__name__
    assert data["message"] == message
    assert attrs.items() <= data.items()
    json.dumps(data)  # goes into the ASL error cause


def test_propagation_delay_explains_the_wait() -> None:
    err = IamPropagationDelay("UpdateAssumeRolePolicy", "222222222222")
    assert "Invalid principal in policy" in str(err) and "2 minutes" in str(err)


def test_invalid_event_never_keeps_an_external_id_value() -> None:
    err = InvalidEvent("detail.externalId", "must be ...", "the-secret-value")
    assert err.value is None and "the-secret-value" not in json.dumps(err.to_dict())


def test_to_dict_is_json_safe_for_odd_values() -> None:
    err = InvalidEvent("detail.clusterId", "must be a string", {1, 2})
    assert isinstance(json.dumps(err.to_dict()), str)


def test_what_was_left_round_trips_through_a_lambda_error_cause() -> None:
    from atc_xaccount.errors import CompensationIncomplete, left_from_cause

    left = [{"change": "retiredVersion", "what": "v1 is not back", "document": {"Version": "2012-10-17"}}]
    error = CompensationIncomplete("VerificationFailed", left)
    cause = json.dumps({"errorType": "CompensationIncomplete", "errorMessage": str(error), "stackTrace": []})

    assert left_from_cause(cause) == left
    assert left_from_cause(cause + " (after X: more text)") == left, "the ASL appends the original failure"
    assert left_from_cause(str(error)) == left
    assert left_from_cause("no marker here") == []
    assert "VerificationFailed" in str(error) and "retiredVersion (v1 is not back)" in str(error)
