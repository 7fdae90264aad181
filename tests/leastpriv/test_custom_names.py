"""Custom role and policy names: rehearsed with the bootstrap parameters they need, and
refused, before any write, with the parameter to set when the stack instance lacks them.

events/custom-names-world.json carries `bootstrap` per account (the parameters of that
account's stack instance of bootstrap/automation-role.yaml); the emulator deploys each
account's automation role from the template with them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from atc_xaccount_cli.local import world as worlds
from tests.leastpriv.conftest import OFFBOARD, ROOT, Case, Lab, load

CUSTOM = {
    "nodeRoleName": "atc-transfer-node",
    "accessRoleName": "atc-transfer-access",
    "assumePolicyName": "atc-transfer-assume",
    "accessPolicyName": "atc-transfer-s3-policy",
}


def _custom_world(case: Case, *, bootstrap: bool = True) -> dict[str, Any]:
    world = case.world(load("custom-names-world.json"))
    if not bootstrap:
        for state in world["accounts"].values():
            state.pop("bootstrap", None)
    return world


def _custom_event(case: Case, name: str = "cluster-registered-custom-names.json") -> dict[str, Any]:
    return case.event(load(name))


def _targets(lab: Lab, case: Case) -> dict[str, Any]:
    snap = lab.emulator.snapshot([case.cm, case.s3])["accounts"]
    return {a: {k: v for k, v in s.items() if k in ("roles", "policies")} for a, s in snap.items()}


def test_the_world_keys_are_the_bootstrap_templates_name_parameters():
    from atc_xaccount_cli.local.template import load_yaml

    params = load_yaml(ROOT / "bootstrap" / "automation-role.yaml")["Parameters"]
    named = {
        p
        for p in params
        if p.endswith(("RoleName", "PolicyName")) and p not in ("AutomationRoleName", "OperatorRoleName")
    }
    # ... and who may read the account (the operators' role: tests/engine/test_operators.py).
    assert named | {"OperatorPrincipalArns"} == worlds.BOOTSTRAP_KEYS


def test_the_sample_event_names_what_the_sample_world_bootstraps():
    event = load("cluster-registered-custom-names.json")["detail"]
    world = load("custom-names-world.json")["accounts"]
    given = {**world[event["clusterManagerAccountId"]]["bootstrap"], **world[event["s3AccountId"]]["bootstrap"]}
    assert {k[0].upper() + k[1:]: v for k, v in CUSTOM.items()} == given
    assert {k: event[k] for k in CUSTOM} == CUSTOM


def test_custom_names_onboard_rerun_with_no_write_and_deregister(lab: Lab):
    case = lab.case()
    lab.emulator.seed(_custom_world(case))
    before = _targets(lab, case)

    with lab.emulator.counting() as calls:
        first = lab.run(_custom_event(case))
    assert first.status == "SUCCEEDED", first.cause
    assert calls.summary()["writes"] > 0
    node = lab.iam(case.cm).list_attached_role_policies(RoleName=CUSTOM["nodeRoleName"])["AttachedPolicies"]
    assert [p["PolicyName"] for p in node] == [CUSTOM["assumePolicyName"]]
    trust = lab.iam(case.s3).get_role(RoleName=CUSTOM["accessRoleName"])["Role"]["AssumeRolePolicyDocument"]
    assert f"arn:aws:iam::{case.cm}:role/{CUSTOM['nodeRoleName']}" in json.dumps(trust)

    with lab.emulator.counting() as calls:
        again = lab.run(_custom_event(case))
    assert again.status == "SUCCEEDED", again.cause
    assert calls.summary()["writes"] == 0, calls.summary()

    off = lab.run(case.event(load("cluster-deregistered.json")), OFFBOARD)
    assert off.status == "SUCCEEDED", off.cause
    assert _targets(lab, case) == before


def test_without_the_bootstrap_names_preflight_says_which_parameter_to_set(lab: Lab):
    case = lab.case()
    lab.emulator.seed(_custom_world(case, bootstrap=False))
    before = _targets(lab, case)

    with lab.emulator.counting() as calls:
        result = lab.run(_custom_event(case))

    assert result.status == "FAILED"
    assert result.error == "AutomationRoleDenied", (result.error, result.cause)
    message = result.cause or ""
    # Preflight reads both accounts at once: whichever denial comes first names its parameter.
    expected = {
        (case.cm, "NodeRoleName", CUSTOM["nodeRoleName"]),
        (case.cm, "AssumePolicyName", CUSTOM["assumePolicyName"]),
        (case.s3, "AccessRoleName", CUSTOM["accessRoleName"]),
        (case.s3, "AccessPolicyName", CUSTOM["accessPolicyName"]),
    }
    named = [
        (account, parameter, value)
        for account, parameter, value in expected
        if f"account {account}" in message and f"{parameter}={value}" in message
    ]
    assert len(named) == 1, message
    assert "may not call iam:" in message and "bootstrap/automation-role.yaml" in message
    states = [s.name for s in result.states]
    assert "Preflight" in states and "EnsureAssumePolicy" not in states, states
    assert calls.summary()["writes"] == 0, calls.summary()
    assert _targets(lab, case) == before


def test_only_the_missing_parameter_is_named(lab: Lab):
    """The cluster manager account was bootstrapped for the custom names, the S3 account for all but one."""
    case = lab.case()
    world = _custom_world(case)
    # AccessPolicyName scopes no permission any more (the doctor reads every policy document
    # of the account), so the parameter left out is the access role's name.
    del world["accounts"][case.s3]["bootstrap"]["AccessRoleName"]
    lab.emulator.seed(world)

    result = lab.run(_custom_event(case))

    assert result.error == "AutomationRoleDenied", result.cause
    assert f"AccessRoleName={CUSTOM['accessRoleName']}" in result.cause
    assert f"account {case.s3}" in result.cause


@pytest.mark.parametrize(
    ("bootstrap", "message"),
    [
        ({"NodeRole": "atc-x"}, "unknown bootstrap parameter(s) NodeRole"),
        ({"AutomationRoleName": "x"}, "unknown bootstrap parameter(s) AutomationRoleName"),
        ({"NodeRoleName": 7}, "NodeRoleName: must be the parameter's string value"),
        ("atc-node", "must be an object of bootstrap parameters"),
    ],
)
def test_a_malformed_bootstrap_key_is_refused_with_its_path(bootstrap, message):
    world = copy.deepcopy(load("sample-world.json"))
    world["accounts"]["111111111111"]["bootstrap"] = bootstrap
    with pytest.raises(worlds.WorldError) as caught:
        worlds.validate_world(world)
    assert str(caught.value).startswith("accounts.111111111111.bootstrap")
    assert message in str(caught.value)


def test_a_value_cloudformation_would_refuse_is_refused(lab: Lab):
    """The bootstrap template's AllowedPattern: the roles and policies it manages are atc-*."""
    case = lab.case()
    world = _custom_world(case)
    world["accounts"][case.cm]["bootstrap"]["NodeRoleName"] = "transfer-node"
    with pytest.raises(worlds.WorldError) as caught:
        lab.emulator.seed(world)
    assert f"accounts.{case.cm}.bootstrap" in str(caught.value) and "NodeRoleName='transfer-node'" in str(caught.value)


def test_the_snapshot_writes_the_bootstrap_key_back(lab: Lab):
    case = lab.case()
    world = _custom_world(case)
    lab.emulator.seed(world)
    snap = lab.emulator.snapshot([case.cm, case.s3])["accounts"]
    assert snap[case.cm]["bootstrap"] == world["accounts"][case.cm]["bootstrap"]
    assert snap[case.s3]["bootstrap"] == world["accounts"][case.s3]["bootstrap"]


def test_the_role_is_the_bootstrap_template_deployed_with_the_parameters(lab: Lab):
    """The policy comes from bootstrap/automation-role.yaml with the overrides, not a copy."""
    case = lab.case()
    lab.emulator.seed(_custom_world(case))
    iam = lab.iam(case.cm)
    names = iam.list_role_policies(RoleName="atc-xaccount-automation")["PolicyNames"]
    text = json.dumps([iam.get_role_policy(RoleName="atc-xaccount-automation", PolicyName=n) for n in names])
    assert "role/atc-transfer-node" in text and "policy/atc-transfer-assume" in text
    assert "role/atc-node" not in text and "policy/atc-s3-assume-role" not in text
