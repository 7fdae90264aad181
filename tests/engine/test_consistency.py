"""IAM's eventual consistency on the emulator (fault kind `consistency`, issue 10 item 2).

Right after CreatePolicy, AttachRolePolicy may answer NoSuchEntity; right after
DetachRolePolicy, DeletePolicy may answer DeleteConflict; a trust policy naming a new
principal may be refused with "Invalid principal in policy". The steps retry exactly
those calls (with backoff; no sleep on the emulator), so the first onboarding and the
last offboarding still end as they would on a consistent IAM.
"""

from __future__ import annotations

import copy
from typing import Any

from atc_xaccount.documents import statements
from atc_xaccount_cli.local.faults import FaultPlan
from tests.engine.conftest import CM, iam_writes, load, onboard, without_secrets

AUTOMATION = "123456789012"

CONSISTENCY = ["iam:*=consistency:1:2"]


def consistency() -> FaultPlan:
    return FaultPlan(CONSISTENCY, seed=1)


def accounts(world: dict[str, Any]) -> dict[str, Any]:
    """The target accounts, trust policies canonical with external IDs redacted (generated IDs differ)."""
    state = copy.deepcopy({k: v for k, v in without_secrets(world).items() if k != AUTOMATION})
    for account in state.values():
        for role in account.get("roles", {}).values():
            for statement in statements(role["trust"]):
                for values in (statement.get("Condition") or {}).values():
                    for key in [k for k in values if k.lower() == "sts:externalid"]:
                        values[key] = "<external id>"
    return state


def calls_hit(plan: FaultPlan) -> list[str]:
    return sorted({f["call"] for f in plan.injected})


def test_first_onboarding_converges_through_eventual_consistency(sample_world, registered_event):
    plan = consistency()
    report = onboard(registered_event, copy.deepcopy(sample_world), faults=plan, prove=False)
    consistent = onboard(registered_event, copy.deepcopy(sample_world), prove=False)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert calls_hit(plan) == ["iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"]
    assert accounts(report.world) == accounts(consistent.world)
    writes = iam_writes(report)
    assert writes["iam:AttachRolePolicy"] == 3, "two NoSuchEntity answers, then the attach"
    assert writes["iam:UpdateAssumeRolePolicy"] == 3, "two 'Invalid principal' answers, then the write"
    assert writes["iam:CreatePolicy"] == 1, "the policy was created once, not re-created"


def test_last_offboarding_converges_through_eventual_consistency(sample_world, registered_event):
    registered = onboard(registered_event, copy.deepcopy(sample_world), prove=False)
    assert registered.result.status == "SUCCEEDED", registered.cause_message
    plan = consistency()

    report = onboard(load("cluster-deregistered.json"), registered.world, faults=plan, prove=False)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert "iam:DeletePolicy" in calls_hit(plan)
    assert accounts(report.world) == accounts(sample_world), "the accounts are as they were"
    assert iam_writes(report)["iam:DeletePolicy"] == 3, "two DeleteConflict answers, then the delete"


def test_a_node_role_that_does_not_exist_fails_preflight_at_once(sample_world, registered_event):
    world: dict[str, Any] = copy.deepcopy(sample_world)
    del world["accounts"][CM]["roles"]["atc-node"]
    plan = consistency()

    report = onboard(registered_event, world, faults=plan, prove=False)

    assert report.result.status == "FAILED"
    assert report.result.error == "PrerequisiteMissing", report.cause_message
    assert "atc-node" in report.cause_message
    assert report.calls["writes"] == 0
    assert report.calls["by_operation"].get("iam:GetRole", 0) <= 2, "no retry of a role that is not there"
