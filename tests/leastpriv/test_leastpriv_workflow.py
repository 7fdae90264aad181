"""The whole onboarding and offboarding with only the bootstrap role's permissions, enforced.

What enforces what (cli/atc_xaccount_cli/local/authz.py): moto decides Action, Resource
and Effect of the automation role's policies; the project's evaluator decides their
`Condition` blocks, which moto does not evaluate in identity policies.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from atc_xaccount_cli.local import authz
from atc_xaccount_cli.local.run import run_event
from tests.leastpriv.conftest import (
    ACCESS_POLICY,
    ACCESS_ROLE,
    ASSUME_POLICY,
    AUTOMATION_ROLE,
    CM,
    NODE_ROLE,
    OFFBOARD,
    ROOT,
    S3,
    Lab,
    automation_session,
)

OTHER_ROLE, OTHER_POLICY = "atc-other-role", "atc-other-policy"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
READ_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}


def iam_state(world: dict[str, Any]) -> dict[str, Any]:
    """Roles and policies of the two target accounts (secrets and registry left out)."""
    return {a: {k: world["accounts"][a].get(k) for k in ("roles", "policies")} for a in (CM, S3)}


def test_onboarding_then_offboarding_succeed_holding_only_the_bootstrap_role(registered, deregistered, sample_world):
    with authz.enforcing():
        onboarded = run_event(ROOT, registered, sample_world, prove=False)
        assert onboarded.result.status == "SUCCEEDED", onboarded.cause_message
        offboarded = run_event(ROOT, deregistered, onboarded.world, prove=False)
        assert offboarded.result.status == "SUCCEEDED", offboarded.cause_message

    node = onboarded.world["accounts"][CM]["roles"][NODE_ROLE]
    assert node["attached"] == [f"arn:aws:iam::{CM}:policy/{ASSUME_POLICY}"]
    assert iam_state(offboarded.world) == iam_state(sample_world), "offboarding leaves the accounts as they were"


def test_the_same_runs_are_refused_once_the_role_lacks_a_permission(registered, sample_world):
    """The run above is enforced: without iam:CreatePolicy the same onboarding fails, naming the account."""
    with authz.enforcing(mutate=authz.without("WriteAssumePolicy", "iam:CreatePolicy")):
        report = run_event(ROOT, registered, sample_world, prove=False)

    assert report.result.status == "FAILED"
    assert f"the automation role in account {CM} may not call iam:CreatePolicy on " in report.cause_message
    assert ASSUME_POLICY not in report.world["accounts"][CM]["policies"]


def test_the_emulated_role_is_the_one_the_template_creates(lab: Lab):
    case = lab.case()
    iam = lab.iam(case.cm)
    expected = authz.load_bootstrap_role(ROOT, {"AutomationAccountId": "123456789012"}, account=case.cm)

    role = iam.get_role(RoleName=AUTOMATION_ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"] == expected.trust
    assert role["MaxSessionDuration"] == 3600
    names = iam.list_role_policies(RoleName=AUTOMATION_ROLE)["PolicyNames"]
    assert {n: iam.get_role_policy(RoleName=AUTOMATION_ROLE, PolicyName=n)["PolicyDocument"] for n in names} == (
        expected.policies
    )
    assert iam.list_attached_role_policies(RoleName=AUTOMATION_ROLE)["AttachedPolicies"] == []


def test_every_iam_call_of_the_steps_is_judged_as_the_automation_role(lab: Lab, registered, sample_world):
    case = lab.case()
    lab.seed(case, sample_world)
    lab.emulator.authz.allowed.clear()
    with lab.emulator.counting() as ledger:
        result = lab.run(case.event(registered))
        calls = ledger.summary(result.name)["by_operation"]

    assert result.status == "SUCCEEDED", result.cause
    judged = dict(lab.emulator.authz.allowed)
    iam_calls = {op: n for op, n in calls.items() if op.startswith("iam:")}
    assert iam_calls and {op: n for op, n in judged.items() if op.startswith("iam:")} == iam_calls
    # Preflight's bucket reads for the access chain (S3 names GetBucketEncryption's action
    # s3:GetEncryptionConfiguration, so they are compared by count).
    s3_calls = sum(n for op, n in calls.items() if op.startswith("s3:"))
    assert s3_calls == 2 and sum(n for op, n in judged.items() if op.startswith("s3:")) == s3_calls
    assert set(judged) <= {*iam_calls, "s3:GetBucketPolicy", "s3:GetEncryptionConfiguration"}


def test_cluster_manager_and_s3_in_one_account(lab: Lab, registered, deregistered, sample_world):
    case = lab.case(same_account=True)
    lab.seed(case, sample_world)

    onboarded = lab.run(case.event(registered))
    assert onboarded.status == "SUCCEEDED", onboarded.cause
    offboarded = lab.run(case.event(deregistered), OFFBOARD)
    assert offboarded.status == "SUCCEEDED", offboarded.cause


def test_names_the_bootstrap_stack_was_not_given_are_refused(lab: Lab, registered, sample_world):
    """An event may name other roles; the role only touches the names of its parameters."""
    case = lab.case()
    world = case.world(sample_world)
    cm, s3 = world["accounts"][case.cm], world["accounts"][case.s3]
    cm["roles"]["atc-node-blue"] = cm["roles"].pop(NODE_ROLE)
    lab.emulator.seed(world)

    result = lab.run(case.event(registered, nodeRoleName="atc-node-blue"))

    assert result.status == "FAILED"
    assert result.error == "AutomationRoleDenied", result.cause
    assert f"the automation role in account {case.cm} may not call iam:GetRole on " in result.cause
    assert "NodeRoleName=atc-node-blue" in result.cause
    assert (
        s3["roles"][ACCESS_ROLE]["trust"]
        == lab.iam(case.s3).get_role(RoleName=ACCESS_ROLE)["Role"]["AssumeRolePolicyDocument"]
    )


# --- the same credentials, used for anything else ---------------------------------------------


@pytest.fixture(scope="module")
def onboarded_case(lab: Lab) -> Any:
    """A cluster onboarded under enforcement, beside roles and policies it must not touch."""
    from tests.leastpriv.conftest import load

    case = lab.case()
    world = case.world(load("sample-world.json"))
    for account in (case.cm, case.s3):
        world["accounts"][account]["roles"][OTHER_ROLE] = {"trust": EC2_TRUST, "attached": []}
        world["accounts"][account]["policies"][OTHER_POLICY] = {"document": READ_ONLY, "versions": 1}
    lab.emulator.seed(world)
    result = lab.run(case.event(load("cluster-registered.json")))
    assert result.status == "SUCCEEDED", result.cause
    return case


def _denied(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "AccessDenied", caught.value
    return str(caught.value.response["Error"]["Message"])


def _trust(account: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_what_the_role_is_for_is_allowed_with_these_credentials(onboarded_case):
    """The control for the refusals below: the credentials themselves work."""
    cm = automation_session(onboarded_case.cm).client("iam")
    s3 = automation_session(onboarded_case.s3).client("iam")

    assert cm.get_role(RoleName=NODE_ROLE)["Role"]["RoleName"] == NODE_ROLE
    assert cm.get_policy(PolicyArn=onboarded_case.assume_policy_arn)["Policy"]["PolicyName"] == ASSUME_POLICY
    assert s3.get_role(RoleName=ACCESS_ROLE)["Role"]["RoleName"] == ACCESS_ROLE
    assert "SummaryMap" in s3.get_account_summary()


@pytest.mark.parametrize(
    ("side", "attempt"),
    [
        ("cm", lambda iam, a: iam.update_assume_role_policy(RoleName=NODE_ROLE, PolicyDocument=_trust(a))),
        ("cm", lambda iam, a: iam.update_assume_role_policy(RoleName=OTHER_ROLE, PolicyDocument=_trust(a))),
        (
            "cm",
            lambda iam, a: iam.attach_role_policy(
                RoleName=OTHER_ROLE, PolicyArn=f"arn:aws:iam::{a}:policy/{ASSUME_POLICY}"
            ),
        ),
        (
            "cm",
            lambda iam, a: iam.create_policy(PolicyName="atc-s3-assume-role-2", PolicyDocument=json.dumps(READ_ONLY)),
        ),
        ("cm", lambda iam, a: iam.delete_policy(PolicyArn=f"arn:aws:iam::{a}:policy/{OTHER_POLICY}")),
        (
            "cm",
            lambda iam, a: iam.create_policy_version(
                PolicyArn=f"arn:aws:iam::{a}:policy/{OTHER_POLICY}", PolicyDocument=json.dumps(READ_ONLY)
            ),
        ),
        ("cm", lambda iam, a: iam.delete_role(RoleName=NODE_ROLE)),
        ("cm", lambda iam, a: iam.create_role(RoleName="atc-new", AssumeRolePolicyDocument=_trust(a))),
        (
            "cm",
            lambda iam, a: iam.put_role_policy(
                RoleName=AUTOMATION_ROLE, PolicyName="more", PolicyDocument=json.dumps(READ_ONLY)
            ),
        ),
        ("cm", lambda iam, a: iam.update_assume_role_policy(RoleName=AUTOMATION_ROLE, PolicyDocument=_trust(a))),
        ("s3", lambda iam, a: iam.update_assume_role_policy(RoleName=OTHER_ROLE, PolicyDocument=_trust(a))),
        (
            "s3",
            lambda iam, a: iam.create_policy_version(
                PolicyArn=f"arn:aws:iam::{a}:policy/{ACCESS_POLICY}", PolicyDocument=json.dumps(READ_ONLY)
            ),
        ),
        (
            "s3",
            lambda iam, a: iam.detach_role_policy(
                RoleName=ACCESS_ROLE, PolicyArn=f"arn:aws:iam::{a}:policy/{ACCESS_POLICY}"
            ),
        ),
        ("s3", lambda iam, a: iam.delete_role(RoleName=ACCESS_ROLE)),
    ],
    ids=[
        "update atc-node's trust",
        "update another role's trust (cluster manager account)",
        "attach the assume policy to another role",
        "create another policy",
        "delete another policy",
        "version another policy",
        "delete atc-node",
        "create a role",
        "add a policy to itself",
        "rewrite its own trust",
        "update another role's trust (S3 account)",
        "widen the access policy",
        "detach the access policy",
        "delete the access role",
    ],
)
def test_anything_else_is_access_denied_by_moto(onboarded_case, side, attempt):
    account = onboarded_case.cm if side == "cm" else onboarded_case.s3
    message = _denied(lambda: attempt(automation_session(account).client("iam"), account))

    assert f"assumed-role/{AUTOMATION_ROLE}/" in message and f":{account}:" in message
    assert authz.CONDITION_JUDGE not in message, "moto's half refuses these: no statement allows them"


@pytest.mark.parametrize(
    "policy",
    ["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::{account}:policy/" + OTHER_POLICY],
    ids=["AdministratorAccess", "another policy of the account"],
)
def test_attaching_any_other_policy_to_atc_node_is_denied_by_the_condition(lab: Lab, onboarded_case, policy):
    account = onboarded_case.cm
    iam = automation_session(account).client("iam")
    message = _denied(lambda: iam.attach_role_policy(RoleName=NODE_ROLE, PolicyArn=policy.format(account=account)))

    assert authz.CONDITION_JUDGE in message, "the iam:PolicyARN condition is what refuses this"
    attached = lab.iam(account).list_attached_role_policies(RoleName=NODE_ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [onboarded_case.assume_policy_arn]


def test_moto_alone_would_let_the_role_attach_another_policy_to_atc_node(lab: Lab, onboarded_case):
    """Why the project's evaluator judges conditions: moto treats ArnEquals iam:PolicyARN as met."""
    account = onboarded_case.cm
    other = f"arn:aws:iam::{account}:policy/{OTHER_POLICY}"
    iam = automation_session(account).client("iam")
    lab.emulator.authz.evaluate_conditions = False
    try:
        iam.attach_role_policy(RoleName=NODE_ROLE, PolicyArn=other)
        attached = lab.iam(account).list_attached_role_policies(RoleName=NODE_ROLE)["AttachedPolicies"]
        assert other in [p["PolicyArn"] for p in attached]
    finally:
        lab.emulator.authz.evaluate_conditions = True
        lab.iam(account).detach_role_policy(RoleName=NODE_ROLE, PolicyArn=other)


def test_detaching_another_policy_from_atc_node_is_denied_by_the_condition(lab: Lab, onboarded_case):
    account = onboarded_case.cm
    other = f"arn:aws:iam::{account}:policy/{OTHER_POLICY}"
    lab.iam(account).attach_role_policy(RoleName=NODE_ROLE, PolicyArn=other)
    try:
        iam = automation_session(account).client("iam")
        message = _denied(lambda: iam.detach_role_policy(RoleName=NODE_ROLE, PolicyArn=other))
    finally:
        lab.iam(account).detach_role_policy(RoleName=NODE_ROLE, PolicyArn=other)
    assert authz.CONDITION_JUDGE in message


def test_a_session_of_another_role_is_not_judged(lab: Lab, onboarded_case):
    """Selective: only the automation role is enforced (the emulator's administrator is not)."""
    iam = lab.iam(onboarded_case.cm)
    iam.update_assume_role_policy(RoleName=OTHER_ROLE, PolicyDocument=json.dumps(EC2_TRUST))
