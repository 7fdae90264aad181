"""Every step's own calls are judged against its role as `sam deploy` creates it.

The roles come from template.yaml translated by aws-sam-translator (step_roles.py), not
from a table here. Each case removes one grant of one step role and runs the scenario
that first needs it; the execution must fail with AWS's AccessDenied for that action.
The same scenarios with the whole roles are the control.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from atc_xaccount_cli.local import step_roles
from atc_xaccount_cli.local.dispatch import is_write
from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, PARTITION, REGION
from atc_xaccount_cli.local.faults import FaultPlan
from tests.leastpriv.conftest import OFFBOARD, Case, Lab, load

AUDIT = "AuditStateMachine"
#: The grants of the step roles that come from AWS managed policies SAM adds (Lambda's
#: logs, X-Ray): Lambda uses them, not the step's code.
LAMBDA_ITSELF = ("logs:", "xray:")
#: What SAM adds to a function declaring VpcConfig (the Node API steps): Lambda's network
#: interfaces; outside a VPC their NodeApiStepsBoundary takes it away (tests/deploy/test_node_api_template.py).
LAMBDA_VPC_SID = "AWSLambdaVPCAccessExecutionPermissions"
NODE_API_STEPS = ("EnsureAccessKeyFunction", "DeleteAccessKeyFunction", "RotateAccessKeyFunction")

#: (function, statement Sid, action, scenario that first needs it)
GRANTS = [
    ("PreflightFunction", "AssumeAutomationRole", "sts:AssumeRole", "onboard"),
    ("PreflightFunction", "ReadExternalIdSecrets", "secretsmanager:GetSecretValue", "onboard"),
    # A pure addition is grouped (no lock in Preflight); a replaced external ID is not.
    ("PreflightFunction", "LockIfUnchanged", "dynamodb:UpdateItem", "new-external-id"),
    ("PreflightFunction", "FenceReads", "dynamodb:GetItem", "onboard"),
    ("EnsureAssumePolicyFunction", "FenceReadsNoteWrites", "dynamodb:GetItem", "onboard"),
    ("EnsureAssumePolicyFunction", "FenceReadsNoteWrites", "dynamodb:UpdateItem", "onboard"),
    ("EnsureAssumePolicyFunction", "KeepUsersAndProvenance", "dynamodb:UpdateItem", "onboard"),
    ("MergeTrustFunction", "FenceReadsNoteWrites", "dynamodb:GetItem", "onboard"),
    ("MergeTrustFunction", "FenceReadsNoteWrites", "dynamodb:UpdateItem", "onboard"),
    ("MergeTrustFunction", "KeepUsersAndProvenance", "dynamodb:UpdateItem", "onboard"),
    ("MergeTrustFunction", "ReadClusterUsers", "dynamodb:GetItem", "new-external-id"),
    ("CompensateFunction", "FenceReadsNoteWrites", "dynamodb:GetItem", "rollback"),
    ("CompensateFunction", "FenceReadsNoteWrites", "dynamodb:UpdateItem", "rollback"),
    ("CompensateFunction", "UndoGroupedChanges", "dynamodb:GetItem", "rollback-late"),
    ("RevokeTrustFunction", "FenceReadsNoteWrites", "dynamodb:GetItem", "offboard"),
    ("RevokeTrustFunction", "FenceReadsNoteWrites", "dynamodb:UpdateItem", "offboard"),
    ("RevokePolicyFunction", "FenceReadsNoteWrites", "dynamodb:GetItem", "offboard"),
    ("RevokePolicyFunction", "FenceReadsNoteWrites", "dynamodb:UpdateItem", "offboard"),
    ("PreflightFunction", "IsTheRegistryUpToDate", "dynamodb:GetItem", "rerun"),
    ("EnsureAssumePolicyFunction", "AssumeAutomationRole", "sts:AssumeRole", "onboard"),
    ("MergeTrustFunction", "AssumeAutomationRole", "sts:AssumeRole", "onboard"),
    ("MergeTrustFunction", "ManageExternalIdSecrets", "secretsmanager:CreateSecret", "onboard"),
    ("MergeTrustFunction", "ManageExternalIdSecrets", "secretsmanager:GetSecretValue", "new-external-id"),
    ("MergeTrustFunction", "PromoteStagedExternalId", "secretsmanager:UpdateSecretVersionStage", "new-external-id"),
    ("ValidateFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "new-external-id"),
    ("ValidateFunction", "ReadRegistration", "dynamodb:GetItem", "new-external-id"),
    ("ValidateFunction", "StageExternalIds", "secretsmanager:GetSecretValue", "new-external-id"),
    ("ValidateFunction", "StageExternalIds", "secretsmanager:PutSecretValue", "new-external-id"),
    ("ValidateFunction", "StageExternalIds", "secretsmanager:CreateSecret", "given-id"),
    ("ValidateFunction", "TagNewExternalIdSecrets", "secretsmanager:TagResource", "given-id"),
    ("MergeTrustFunction", "TagNewExternalIdSecrets", "secretsmanager:TagResource", "onboard"),
    ("AcquireLocksFunction", "TakeLocksInOneTransaction", "dynamodb:UpdateItem", "offboard"),
    ("AcquireLocksFunction", "NameTheLockHolder", "dynamodb:GetItem", "locked-new-id"),
    ("ReleaseLocksFunction", "ReleaseOwnLocks", "dynamodb:UpdateItem", "offboard"),
    ("RecordFunction", "WriteRegistration", "dynamodb:UpdateItem", "onboard"),
    # A grouped onboarding holds no lock at Record; one that replaced its external ID does.
    ("RecordFunction", "ReleaseOwnLocks", "dynamodb:UpdateItem", "new-external-id"),
    ("CompensateFunction", "AssumeAutomationRole", "sts:AssumeRole", "rollback"),
    ("CompensateFunction", "DeleteExternalIdSecrets", "secretsmanager:GetSecretValue", "rollback"),
    ("CompensateFunction", "DeleteExternalIdSecrets", "secretsmanager:DeleteSecret", "rollback"),
    ("CompensateFunction", "RestorePreviousExternalId", "secretsmanager:UpdateSecretVersionStage", "rollback-new-id"),
    ("LoadRegistrationFunction", "ReadRegistration", "dynamodb:GetItem", "offboard"),
    ("RevokeTrustFunction", "AssumeAutomationRole", "sts:AssumeRole", "offboard"),
    ("RevokeTrustFunction", "ReadExternalIdSecrets", "secretsmanager:GetSecretValue", "offboard"),
    ("RevokeTrustFunction", "ReadRegistration", "dynamodb:GetItem", "offboard"),
    ("RevokeTrustFunction", "FindOtherClustersOfTheAccount", "dynamodb:Query", "offboard"),
    ("RevokePolicyFunction", "AssumeAutomationRole", "sts:AssumeRole", "offboard"),
    ("RevokePolicyFunction", "FindOtherClustersOfTheAccount", "dynamodb:Query", "offboard"),
    ("ForgetFunction", "DeleteExternalIdSecrets", "secretsmanager:GetSecretValue", "offboard"),
    ("ForgetFunction", "DeleteExternalIdSecrets", "secretsmanager:DeleteSecret", "offboard"),
    ("ForgetFunction", "MarkRevoked", "dynamodb:UpdateItem", "offboard"),
    ("ListRegisteredFunction", "ListReadyClusters", "dynamodb:Scan", "audit"),
    ("AuditClusterFunction", "AssumeAutomationRole", "sts:AssumeRole", "audit"),
    ("AuditClusterFunction", "ReadExternalIdSecrets", "secretsmanager:GetSecretValue", "audit"),
    ("AuditClusterFunction", "ReadRegistration", "dynamodb:GetItem", "audit"),
    ("VerifyFunction", "ReadExternalIdSecrets", "secretsmanager:GetSecretValue", "onboard"),
    ("MergeTrustFunction", "FindClustersSharingAnExternalId", "dynamodb:Query", "new-external-id"),
    ("RevokePolicyFunction", "PolicyProvenance", "dynamodb:GetItem", "offboard"),
    # Each function that fingerprints external IDs reads the key once per container.
    ("PreflightFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "onboard"),
    ("MergeTrustFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "onboard"),
    ("VerifyFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "onboard"),
    ("CompensateFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "rollback-new-id"),
    ("RevokeTrustFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "offboard"),
    ("AuditClusterFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "audit"),
    # registry.mark_revoking before the first revoke.
    ("RevokeTrustFunction", "RecordRevoking", "dynamodb:UpdateItem", "offboard"),
    # The rotation workflow's own steps (statemachine/rotate.asl.json).
    ("RotateStartFunction", "AssumeAutomationRole", "sts:AssumeRole", "rotate-start"),
    ("RotateStartFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "rotate-start"),
    ("RotateStartFunction", "ReadRegistration", "dynamodb:GetItem", "rotate-start"),
    ("RotateStartFunction", "StagePendingExternalId", "secretsmanager:GetSecretValue", "rotate-start"),
    ("RotateStartFunction", "StagePendingExternalId", "secretsmanager:PutSecretValue", "rotate-start"),
    ("RotateStartFunction", "StagePendingExternalId", "secretsmanager:UpdateSecretVersionStage", "rollback-rotation"),
    ("RotateFinishFunction", "AssumeAutomationRole", "sts:AssumeRole", "rotate-finish"),
    ("RotateFinishFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue", "rotate-finish"),
    ("RotateFinishFunction", "RecordTheNewFingerprint", "dynamodb:GetItem", "rotate-finish"),
    ("RotateFinishFunction", "RecordTheNewFingerprint", "dynamodb:UpdateItem", "rotate-finish"),
    ("RotateFinishFunction", "FindClustersSharingAnExternalId", "dynamodb:Query", "rotate-finish"),
    ("RotateFinishFunction", "PromotePendingExternalId", "secretsmanager:GetSecretValue", "rotate-finish"),
    ("RotateFinishFunction", "PromotePendingExternalId", "secretsmanager:UpdateSecretVersionStage", "rotate-finish"),
    # Fenced reads and noted writes under the workflow's lock (locking.fenced / noted).
    ("RotateStartFunction", "FenceReadsNoteWrites", "dynamodb:GetItem", "rotate-start"),
    ("RotateStartFunction", "FenceReadsNoteWrites", "dynamodb:UpdateItem", "rotate-start"),
    ("RotateFinishFunction", "FenceReadsNoteWrites", "dynamodb:GetItem", "rotate-finish"),
    ("RotateFinishFunction", "FenceReadsNoteWrites", "dynamodb:UpdateItem", "rotate-finish"),
    ("EnsureAccessKeyFunction", "ReadNodeApiUsers", "secretsmanager:GetSecretValue", "node-onboard"),
    ("DeleteAccessKeyFunction", "ForgetAccessKeySecrets", "secretsmanager:DeleteSecret", "node-offboard"),
    # Zero-touch rotation: the key moves to the pending ID (its record updated) and is browsed.
    ("RotateAccessKeyFunction", "RecordAccessKey", "dynamodb:UpdateItem", "node-rotate"),
]

#: Grants no emulated scenario can reach, and why (each still proven by another test).
NOT_ON_THE_EMULATOR = {
    # moto has no Access Analyzer, so the emulator's steps skip ValidatePolicy
    # (ACCESS_ANALYZER=unavailable); test_validate_policy_is_judged_for_preflight judges the call.
    ("PreflightFunction", "ValidatePolicyDocuments", "access-analyzer:ValidatePolicy"),
    # ... and EnsureAssumePolicy validates again only when the policy appeared after preflight.
    ("EnsureAssumePolicyFunction", "ValidatePolicyDocuments", "access-analyzer:ValidatePolicy"),
    # The bulk workflow's steps: tests/engine/test_engine_bulk.py runs them under enforcement, and
    # tests/deploy/test_step_policies.py holds each S3 grant to the call that uses it.
    ("PrepareBulkFunction", "ReadUploads", "s3:GetObject"),
    ("PrepareBulkFunction", "WriteItems", "s3:PutObject"),
    ("ReportBulkFunction", "WriteReports", "s3:PutObject"),
    ("ReportBulkFunction", "ReadResults", "s3:GetObject"),
    # ... and Prepare's staging of the rows' external IDs (tests/lifecycle/test_history.py).
    ("PrepareBulkFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue"),
    ("PrepareBulkFunction", "ReadRegistration", "dynamodb:GetItem"),
    ("PrepareBulkFunction", "StageExternalIds", "secretsmanager:GetSecretValue"),
    ("PrepareBulkFunction", "StageExternalIds", "secretsmanager:CreateSecret"),
    ("PrepareBulkFunction", "StageExternalIds", "secretsmanager:PutSecretValue"),
    ("PrepareBulkFunction", "TagNewExternalIdSecrets", "secretsmanager:TagResource"),
    # Only a compensation that cannot finish records what it left (tests/lifecycle/test_undo.py
    # runs that path under enforcement), and the provenance of a policy shared by clusters is
    # updated or deleted only by the last deregistrations of tests/lifecycle/test_undo.py.
    ("CompensateFunction", "RecordWhatWasLeftBehind", "dynamodb:UpdateItem"),
    # ... and only its retry that finishes takes the record off again
    # (tests/lifecycle/test_undo.py: a throttle on the compensation's own call).
    ("CompensateFunction", "RecordWhatWasLeftBehind", "dynamodb:DeleteItem"),
    ("RevokePolicyFunction", "PolicyProvenance", "dynamodb:UpdateItem"),
    ("RevokePolicyFunction", "PolicyProvenance", "dynamodb:DeleteItem"),
    # Only the undo of a write a group commit made for several clusters asks who else needs
    # it and forgets the policy's provenance (tests/lifecycle/test_converge.py runs it under
    # enforcement); a write that was one cluster's alone is undone as before.
    ("CompensateFunction", "UndoGroupedChanges", "dynamodb:DeleteItem"),
    ("CompensateFunction", "FindOtherUsers", "dynamodb:Query"),
    # The Node API steps' other grants: tests/engine/test_node_api.py runs these steps under
    # enforcement (create, re-run, rewrite, delete), and tests/deploy/test_step_policies.py holds
    # each grant to the call that uses it; one grant of each step is removed above.
    ("EnsureAccessKeyFunction", "ReadExternalIdSecrets", "secretsmanager:GetSecretValue"),
    ("EnsureAccessKeyFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue"),
    ("EnsureAccessKeyFunction", "KeepAccessKeySecrets", "secretsmanager:CreateSecret"),
    ("EnsureAccessKeyFunction", "TagNewAccessKeySecrets", "secretsmanager:TagResource"),
    ("EnsureAccessKeyFunction", "RecordAccessKey", "dynamodb:GetItem"),
    ("EnsureAccessKeyFunction", "RecordAccessKey", "dynamodb:UpdateItem"),
    ("DeleteAccessKeyFunction", "ReadNodeApiUsers", "secretsmanager:GetSecretValue"),
    ("DeleteAccessKeyFunction", "ForgetAccessKeySecrets", "secretsmanager:GetSecretValue"),
    ("DeleteAccessKeyFunction", "ForgetAccessKey", "dynamodb:GetItem"),
    ("DeleteAccessKeyFunction", "ForgetAccessKey", "dynamodb:UpdateItem"),
    ("RotateAccessKeyFunction", "ReadNodeApiUsers", "secretsmanager:GetSecretValue"),
    ("RotateAccessKeyFunction", "ReadExternalIdSecrets", "secretsmanager:GetSecretValue"),
    ("RotateAccessKeyFunction", "ReadFingerprintKey", "secretsmanager:GetSecretValue"),
    ("RotateAccessKeyFunction", "RecordAccessKey", "dynamodb:GetItem"),
}

ROLLBACK_FAULT = "MergeTrust/iam:UpdateAssumeRolePolicy=fail"
#: A rotation start whose grant fails: it takes its pending ID off again.
ROTATION_FAULT = "RotateStart/iam:UpdateAssumeRolePolicy=fail"
#: A failure after MergeTrust replaced the external ID: the rollback restores the previous one.
LATE_FAULT = "Record/dynamodb:TransactWriteItems=fail"
#: Seconds another execution still holds the access role's lock when the scenario starts.
LEASE_LEFT = 10


def _translated_grants(lab: Lab) -> list[tuple[str, str, str]]:
    roles = lab.emulator.step_roles
    assert roles is not None
    found = []
    for function, docs in roles.roles.items():
        for doc in docs:
            for stmt in doc.get("Statement", []):
                if stmt.get("Sid") == LAMBDA_VPC_SID and function in NODE_API_STEPS:
                    continue
                actions = [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]
                found.extend(
                    (function, str(stmt.get("Sid", "")), a) for a in actions if not a.startswith(LAMBDA_ITSELF)
                )
    return sorted(found)


def _onboard(lab: Lab, case: Case, **detail: Any) -> Any:
    return lab.run(case.event(load("cluster-registered.json"), **detail))


def _scenario(lab: Lab, case: Case, scenario: str, mutation: step_roles.RoleMutation | None) -> Any:
    """Seed, bring the case to where `scenario` starts, change the role, run the scenario."""
    if scenario.startswith("node-"):
        return _node_scenario(lab, case, scenario, mutation)
    lab.seed(case, load("sample-world.json"))
    if (
        scenario in ("offboard", "rerun", "new-external-id", "audit", "rollback-new-id", "locked-new-id")
        or "rotat" in scenario
    ):
        first = _onboard(lab, case)
        assert first.status == "SUCCEEDED", first.cause
    if scenario == "rotate-finish":
        started = _rotate(lab, case, "start")
        assert started.status == "SUCCEEDED", started.cause
    roles = lab.emulator.step_roles
    assert roles is not None
    with roles.changed(mutation or (lambda r: r)):
        if scenario == "offboard":
            return lab.run(case.event(load("cluster-deregistered.json")), OFFBOARD)
        if scenario in ("rotate-start", "rotate-finish", "rollback-rotation"):
            if scenario == "rollback-rotation":
                lab.emulator.dispatcher.before_call = FaultPlan([ROTATION_FAULT]).before_call
            try:
                return _rotate(lab, case, "finish" if scenario == "rotate-finish" else "start")
            finally:
                lab.emulator.dispatcher.before_call = None
        if scenario == "audit":
            return lab.emulator.follow(lab.emulator.start({}, AUDIT))
        if scenario.startswith("rollback"):
            fault = LATE_FAULT if scenario in ("rollback-new-id", "rollback-late") else ROLLBACK_FAULT
            lab.emulator.dispatcher.before_call = FaultPlan([fault]).before_call
        if scenario.startswith("locked"):
            _hold_trust_lock(lab, case)
        try:
            if scenario in ("new-external-id", "rollback-new-id", "locked-new-id", "given-id"):
                return _onboard(lab, case, externalId=f"replacement-{case.cluster}")
            return _onboard(lab, case)
        finally:
            lab.emulator.dispatcher.before_call = None


def _rotate(lab: Lab, case: Case, phase: str) -> Any:
    """A Rotate External ID event from the case's cluster manager account."""
    event = case.event(load("cluster-registered.json"))
    event["detail-type"] = "Rotate External ID"
    event["detail"] = {
        "clusterId": case.cluster,
        "clusterManagerAccountId": case.cm,
        "s3AccountId": case.s3,
        "phase": phase,
    }
    return lab.run(event, "RotateStateMachine")


def _node_scenario(lab: Lab, case: Case, scenario: str, mutation: step_roles.RoleMutation | None) -> Any:
    """Onboarding with the cluster's Node API, or its deregistration after one."""
    from tests.node_api_lab import NodeCase

    node = NodeCase(case)
    lab.emulator.seed(node.world())
    roles = lab.emulator.step_roles
    assert roles is not None
    if scenario in ("node-offboard", "node-rotate"):
        first = lab.run(node.registered())
        assert first.status == "SUCCEEDED", first.cause
    with roles.changed(mutation or (lambda r: r)):
        if scenario == "node-offboard":
            return lab.run(node.deregistered(), OFFBOARD)
        if scenario == "node-rotate":
            return _rotate(lab, case, "start")
        return lab.run(node.registered())


def _hold_trust_lock(lab: Lab, case: Case) -> None:
    """Another execution holds the access role's lock for a moment: AcquireLocks names it, then takes over."""
    lab.emulator.client("dynamodb").put_item(
        TableName=lab.emulator.tables["LocksTable"],
        Item={
            "lockKey": {"S": f"trust#{case.s3}#atc-s3-access-keys"},
            "owner": {"S": "arn:aws:states:us-east-1:123456789012:execution:OnboardStateMachine:other"},
            "expiresAt": {"N": str(int(time.time()) + LEASE_LEFT)},
        },
    )


def test_the_table_is_every_grant_sam_would_give_the_steps(lab: Lab):
    tabled = sorted([(f, s, a) for f, s, a, _ in GRANTS] + sorted(NOT_ON_THE_EMULATOR))
    assert tabled == _translated_grants(lab)


def test_the_roles_are_the_translated_template_resolved_for_the_emulator(lab: Lab):
    roles = lab.emulator.step_roles
    assert roles is not None and roles.enabled
    preflight = roles.roles["PreflightFunction"]
    # SAM adds Lambda's basic execution role and, with Tracing: Active, X-Ray write access.
    actions = {a for doc in preflight for s in doc["Statement"] for a in step_roles_actions(s)}
    assert {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments"} <= actions
    lock = next(s for doc in preflight for s in doc["Statement"] if s.get("Sid") == "LockIfUnchanged")
    assert lock["Resource"] == f"arn:{PARTITION}:dynamodb:{REGION}:{AUTOMATION_ACCOUNT}:table/LocksTable"
    # Validate never reaches a target account: no sts:AssumeRole, no IAM; only what moving an
    # event's external ID into its secret needs (the owner, the secret, the fingerprint key).
    validate = {a for doc in roles.roles["ValidateFunction"] for s in doc["Statement"] for a in step_roles_actions(s)}
    assert {a for a in validate if not a.startswith(LAMBDA_ITSELF)} == {
        "dynamodb:GetItem",
        "secretsmanager:GetSecretValue",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",
    }


def step_roles_actions(stmt: dict[str, Any]) -> list[str]:
    return [stmt["Action"]] if isinstance(stmt["Action"], str) else list(stmt["Action"])


@pytest.mark.parametrize(
    "scenario",
    [
        "onboard",
        "rerun",
        "new-external-id",
        "offboard",
        "audit",
        "locked",
        "locked-new-id",
        "node-onboard",
        "node-offboard",
    ],
)
def test_control_the_whole_roles_run_each_scenario(lab: Lab, scenario):
    case = lab.case()
    result = _scenario(lab, case, scenario, None)
    assert result.status == "SUCCEEDED", result.cause


@pytest.mark.parametrize("scenario", ["rollback", "rollback-new-id", "rollback-late"])
def test_control_the_whole_roles_roll_back(lab: Lab, scenario):
    case = lab.case()
    result = _scenario(lab, case, scenario, None)
    assert result.status == "FAILED" and "failed in account" in result.cause, result.cause
    undone = lab.compensation(result)["undone"]
    assert undone and all(u["result"] != "failed" for u in undone), undone
    if scenario == "rollback-new-id":
        assert any(u["change"] == "externalId" for u in undone), undone


@pytest.mark.parametrize(
    ("function", "sid", "action", "scenario"),
    GRANTS,
    ids=[f"{fn.removesuffix('Function')}-{action.split(':')[1]}-{scenario}" for fn, _, action, scenario in GRANTS],
)
def test_without_the_grant_the_step_is_denied_as_aws_would(lab: Lab, function, sid, action, scenario):
    case = lab.case()
    principal = f"arn:aws:sts::{AUTOMATION_ACCOUNT}:assumed-role/atc-xaccount-{function}Role-LOCAL/{function}"
    result = _scenario(lab, case, scenario, step_roles.without_grant(function, sid, action))

    denial = f"User: {principal} is not authorized to perform: {action} on resource: "
    if function == "ReleaseLocksFunction":
        # A lock that cannot be released is not a failure (its lease runs out), but it stays held.
        assert result.status == "SUCCEEDED", result.cause
        assert denial in _history(lab, result)
        assert _trust_lock_owner(lab, case) is not None
    elif scenario.startswith("rollback") or scenario == "audit":
        # The onboarding fails either way (the injected fault); the rollback, or the audit of
        # that cluster, is what the grant is for: the denial is in the execution's history.
        assert denial in _history(lab, result)
    else:
        assert result.status == "FAILED"
        assert denial in (result.cause or ""), result.cause


def _history(lab: Lab, result: Any) -> str:
    sfn = lab.emulator.client("stepfunctions")
    return json.dumps(sfn.get_execution_history(executionArn=result.arn, maxResults=1000)["events"], default=str)


def _trust_lock_owner(lab: Lab, case: Case) -> str | None:
    item = (
        lab.emulator.client("dynamodb")
        .get_item(
            TableName=lab.emulator.tables["LocksTable"], Key={"lockKey": {"S": f"trust#{case.s3}#atc-s3-access-keys"}}
        )
        .get("Item")
        or {}
    )
    return (item.get("owner") or {}).get("S")


def test_a_denied_step_call_has_aws_error_shape_and_nothing_is_written(lab: Lab):
    case = lab.case()
    lab.seed(case, load("sample-world.json"))
    first = _onboard(lab, case)
    assert first.status == "SUCCEEDED", first.cause
    roles = lab.emulator.step_roles
    assert roles is not None
    with (
        roles.changed(step_roles.without_grant("PreflightFunction", "LockIfUnchanged")),
        lab.emulator.counting() as calls,
    ):
        # A new external ID replaces the stored one: not grouped, so Preflight locks first.
        result = _onboard(lab, case, externalId=f"replacement-{case.cluster}")
    table = f"arn:aws:dynamodb:{REGION}:{AUTOMATION_ACCOUNT}:table/LocksTable"
    assert result.status == "FAILED"
    assert (
        "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/"
        "atc-xaccount-PreflightFunctionRole-LOCAL/PreflightFunction "
        f"is not authorized to perform: dynamodb:UpdateItem on resource: {table} because no identity-based policy "
        "allows the dynamodb:UpdateItem action"
    ) in result.cause
    # The one write attempted is the denied lock: nothing reached IAM, nothing was changed but
    # Validate's staging of the event's external ID (an inert version of the cluster's secret).
    writes = {k: n for k, n in calls.summary()["by_operation"].items() if is_write(k)}
    assert writes == {"dynamodb:TransactWriteItems": 1, "secretsmanager:PutSecretValue": 1}, writes
    assert _trust_lock_owner(lab, case) is None


def test_validate_policy_is_judged_for_preflight(lab: Lab):
    """Where Access Analyzer exists, Preflight calls ValidatePolicy: its role allows it, no other's does."""
    roles = lab.emulator.step_roles
    assert roles is not None
    client = boto3.client("accessanalyzer", region_name=REGION)  # the emulated Lambda's own credentials
    request = {"policyDocument": "{}", "policyType": "IDENTITY_POLICY"}
    roles.judge("PreflightFunction", client, "ValidatePolicy", request)
    roles.judge("EnsureAssumePolicyFunction", client, "ValidatePolicy", request)
    for function in ("MergeTrustFunction", "VerifyFunction"):
        with pytest.raises(ClientError) as denied:
            roles.judge(function, client, "ValidatePolicy", request)
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
