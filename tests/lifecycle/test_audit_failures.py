"""Every failure in the audit's Distributed Map is that cluster's finding (issue 16 item 6).

The Map tolerates no failed child: a drift event the bus refuses, a repair that cannot be
started, or a Choice on a field the step's result lacks (AWS fails a rule on a missing
path with States.Runtime; moto took the Default, so `$.audit.repairable` of a cluster a
failed compensation left passed here) used to fail the whole audit. Each now ends that
cluster's child with what happened, and the other clusters are still audited.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from atc_xaccount_cli.local.engine import Emulator
from atc_xaccount_cli.local.faults import FaultPlan
from tests.lifecycle.conftest import AUTOMATION, CM, FIRST, ROOT, S3

LEFT = "left-by-compensation"


def audited_world(registered_world: dict[str, Any]) -> dict[str, Any]:
    """FIRST with its trust grant removed (repairable), and a cluster a failed compensation left."""
    world = copy.deepcopy(registered_world)
    trust = world["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"]
    trust["Statement"] = [s for s in trust["Statement"] if not str(s.get("Sid", "")).startswith("AtcXaccount")]
    world["accounts"][AUTOMATION]["registry"][LEFT] = {
        "clusterId": LEFT,
        "state": "FAILED",
        "clusterManagerAccountId": CM,
        "s3AccountId": S3,
        "nodeRoleName": "atc-node",
        "accessRoleName": "atc-s3-access-keys",
        "assumePolicyName": "atc-s3-assume-role",
        "accessPolicyName": "atc-s3-policy",
        "leftByExecution": "an-earlier-onboarding",
        "leftBehind": [{"change": "attach", "what": "the assume policy stays attached", "account": CM}],
    }
    return world


@pytest.fixture(scope="module")
def audit_with_failures(registered) -> Any:
    faults = FaultPlan(["PublishDrift/events:PutEvents=fail", "Repair/states:StartExecution=fail"], seed=1)
    with Emulator(ROOT, parameters={"RepairDrift": "true"}) as emulator:
        emulator.seed(audited_world(registered.world))
        emulator.dispatcher.before_call = faults.before_call
        result = emulator.follow(emulator.start({}, "AuditStateMachine"), timeout=600)
    return result, faults


def test_the_audit_succeeds_and_each_failure_is_its_cluster_s_finding(audit_with_failures):
    result, faults = audit_with_failures

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert {f["step"] for f in faults.injected} == {"PublishDrift", "Repair"}
    tally = result.output
    assert (tally["audited"], tally["failed"], tally["drifted"], tally["repaired"]) == (2, 1, 1, 0)
    clusters = {c["clusterId"]: c for c in tally["clusters"]}
    first = clusters[FIRST]
    assert [d["kind"] for d in first["drift"]] == ["TrustGrantMissing"]
    assert first["repaired"] is False and first["driftEventPublished"] is False
    assert first["failed"]["error"], "the repair that could not be started says why"


def test_a_cluster_a_failed_compensation_left_is_reported_not_repaired(audit_with_failures):
    result, _ = audit_with_failures

    left = {c["clusterId"]: c for c in result.output["clusters"]}[LEFT]
    assert [d["kind"] for d in left["drift"]] == ["LeftByFailedCompensation"]
    assert left["repaired"] is False and "failed" not in left
    assert "repairExecution" not in left, "re-running onboarding would grant access nobody asked for"


def test_a_choice_on_a_missing_path_fails_as_on_aws():
    definition = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.missing", "BooleanEquals": True, "Next": "Yes"}],
                "Default": "No",
            },
            "Yes": {"Type": "Succeed"},
            "No": {"Type": "Succeed"},
        },
    }
    with Emulator(ROOT) as emulator:
        sfn = emulator.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="choice-on-a-missing-path",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/x",
        )["stateMachineArn"]
        missing = emulator.follow(_start(sfn, arn, {}))
        present = emulator.follow(_start(sfn, arn, {"missing": False}))

    assert missing.status == "FAILED" and missing.error == "States.Runtime"
    assert "Invalid path '$.missing': The choice state's condition path references an invalid value." in (
        missing.cause or ""
    )
    assert present.status == "SUCCEEDED"


def _start(sfn: Any, arn: str, payload: dict[str, Any]) -> str:
    return str(
        sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps(payload))["executionArn"]
    )
