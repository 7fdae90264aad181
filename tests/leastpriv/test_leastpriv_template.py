"""bootstrap/automation-role.yaml itself: valid, StackSet-ready, and exactly what the layer calls.

The trust policy and the `iam:PolicyARN` condition are decided here by the project's
evaluator: moto evaluates neither (no cross-account trust, no identity-policy conditions),
which the last tests show on moto's own evaluator.
"""

from __future__ import annotations

import json
import re

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult

from atc_xaccount.evaluate import evaluate_identity, evaluate_trust
from atc_xaccount_cli.local import authz
from tests.leastpriv.conftest import ACCESS_POLICY, ACCESS_ROLE, ASSUME_POLICY, NODE_ROLE, ROOT, bootstrap_role

TEMPLATE = ROOT / authz.BOOTSTRAP_TEMPLATE
LAYER = ROOT / "layers" / "common" / "atc_xaccount"
AUTOMATION = "123456789012"
TARGET = "444455556666"
NODE_ARN = f"arn:aws:iam::{TARGET}:role/{NODE_ROLE}"
ACCESS_ARN = f"arn:aws:iam::{TARGET}:role/{ACCESS_ROLE}"
ASSUME_ARN = f"arn:aws:iam::{TARGET}:policy/{ASSUME_POLICY}"
ACCESS_POLICY_ARN = f"arn:aws:iam::{TARGET}:policy/{ACCESS_POLICY}"


def test_cfn_lint_passes():
    api = pytest.importorskip("cfnlint.api")
    assert [str(match) for match in api.lint_file(TEMPLATE)] == []


def test_no_account_or_partition_literal_so_one_template_serves_every_stack_instance():
    text = TEMPLATE.read_text()
    assert not re.search(r"\b\d{12}\b", text)
    assert "arn:aws" not in text


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_every_resource_is_in_the_target_account_and_partition(partition):
    role = authz.load_bootstrap_role(ROOT, {"AutomationAccountId": AUTOMATION}, account=TARGET, partition=partition)
    statements = [s for doc in role.documents for s in doc["Statement"]]
    resources = {r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}

    assert resources == {
        f"arn:{partition}:iam::{TARGET}:role/{NODE_ROLE}",
        f"arn:{partition}:iam::{TARGET}:role/{ACCESS_ROLE}",
        # the same two roles under a path, GetRole only (Preflight refuses them by name)
        f"arn:{partition}:iam::{TARGET}:role/*/{NODE_ROLE}",
        f"arn:{partition}:iam::{TARGET}:role/*/{ACCESS_ROLE}",
        # its own inline policy, read only (Preflight proves the planned writes with it)
        f"arn:{partition}:iam::{TARGET}:role/atc-xaccount-automation",
        f"arn:{partition}:iam::{TARGET}:policy/{ASSUME_POLICY}",
        # policy documents, read only: the doctor reads whatever is attached and the boundaries
        f"arn:{partition}:iam::{TARGET}:policy/*",
        f"arn:{partition}:iam::aws:policy/*",
        # bucket names come from events: the statement is held to this account's buckets
        f"arn:{partition}:s3:::*",
        f"arn:{partition}:kms:*:{TARGET}:key/*",
        "*",
    }
    star = [s for s in statements if s["Resource"] == "*"]
    assert [s["Action"] for s in star] == ["iam:GetAccountSummary"], "only the action without a resource type"
    buckets = next(s for s in statements if s["Resource"] == f"arn:{partition}:s3:::*")
    assert buckets["Condition"] == {"StringEquals": {"aws:ResourceAccount": TARGET}}
    writes = [
        s for s in statements if s["Sid"] in ("ReadPolicyDocuments", "ReadBucketAccessSettings", "ReadBucketKeys")
    ]
    assert all(a.split(":")[1].startswith(("Get", "Describe")) for s in writes for a in s["Action"])
    assert role.trust["Statement"][0]["Principal"] == {"AWS": f"arn:{partition}:iam::{AUTOMATION}:root"}


@pytest.mark.parametrize(
    ("account", "allowed"), [(TARGET, True), ("999999999999", False)], ids=["own bucket", "another account's bucket"]
)
def test_bucket_settings_are_readable_only_in_the_roles_own_account(account, allowed):
    context = {"aws:ResourceAccount": account}
    for action in ("s3:GetBucketPolicy", "s3:GetEncryptionConfiguration"):
        decision = evaluate_identity(bootstrap_role(TARGET).documents, action, "arn:aws:s3:::b", context=context)
        assert decision.allowed is allowed, decision.reason


@pytest.mark.parametrize(
    ("name", "value"),
    [("NodeRoleName", "node"), ("AccessRoleName", "atc-*"), ("AssumePolicyName", "*"), ("AutomationAccountId", "1234")],
)
def test_parameters_cloudformation_would_refuse_are_refused(name, value):
    with pytest.raises(authz.BootstrapError, match=name):
        authz.load_bootstrap_role(ROOT, {"AutomationAccountId": AUTOMATION, name: value}, account=TARGET)


def test_role_session_limit_and_sids():
    role = bootstrap_role()
    assert role.max_session_duration == 3600
    sids = [s["Sid"] for doc in role.documents for s in doc["Statement"]]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)


# --- exactly what the layer calls ----------------------------------------------------------


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


#: Operations whose IAM action is named otherwise (S3's GetBucketEncryption is authorized as this).
ACTION_OF = {"s3:GetBucketEncryption": "s3:GetEncryptionConfiguration"}


def test_every_call_of_the_layer_in_target_accounts_is_granted_and_nothing_else():
    source = "".join(path.read_text() for path in sorted((LAYER / "iam_ops").glob("*.py")))
    called = {f"iam:{_pascal(m)}" for m in re.findall(r"\biam\.([a-z_]+)\(", source) if m != "get_paginator"}
    called |= {f"iam:{_pascal(m)}" for m in re.findall(r"get_paginator\(\"([a-z_]+)\"\)", source)}
    reads = (LAYER / "chain_reads.py").read_text()
    for service in ("s3", "kms"):
        called |= {f"{service}:{_pascal(m)}" for m in re.findall(rf"\b{service}\.([a-z_]+)\(", reads)}
    granted = {action for _, action in bootstrap_role().grants()}

    assert {ACTION_OF.get(c, c) for c in called} == granted


def test_target_accounts_are_called_only_through_iam_ops_and_chain_reads():
    for path in LAYER.rglob("*.py"):
        text = path.read_text()
        services = set(re.findall(r"sessions\.client\(\"([a-z0-9-]+)\"", text))
        allowed = {"iam", "s3", "kms"} if path.name == "chain_reads.py" else {"iam"}
        assert services <= allowed, f"{path.name} calls {services} in a target account"
        if path.parent.name != "iam_ops":
            assert not re.search(r"\b(?:iam|cm_iam|s3_iam)\.(?!exceptions)[a-z_]+\(", text), path.name


# --- the trust: only the automation stack's step roles ---------------------------------------


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        (f"arn:aws:iam::{AUTOMATION}:role/atc-xaccount-PreflightFunctionRole-1A2B3C4D5E6F", True),
        (f"arn:aws:iam::{AUTOMATION}:role/atc-xaccount-EnsureAssumePolicyFunctionRole-1A2B3C4D5E6F", True),
        (f"arn:aws:iam::{AUTOMATION}:role/ops-admin", False),
        (f"arn:aws:iam::{AUTOMATION}:role/other-stack-PreflightFunctionRole-1A2B3C4D5E6F", False),
        (f"arn:aws:iam::{AUTOMATION}:user/atc-xaccount-deployer", False),
        ("arn:aws:iam::999999999999:role/atc-xaccount-PreflightFunctionRole-1A2B3C4D5E6F", False),
    ],
)
def test_trust_admits_only_the_step_roles_of_the_automation_stack(principal, allowed):
    decision = evaluate_trust(bootstrap_role(TARGET).trust, principal, None)
    assert decision.allowed is allowed, decision.reason


# --- the iam:PolicyARN condition: decided by the project's evaluator --------------------------


@pytest.mark.parametrize(
    ("action", "resource", "policy_arn", "allowed"),
    [
        ("iam:AttachRolePolicy", NODE_ARN, ASSUME_ARN, True),
        ("iam:DetachRolePolicy", NODE_ARN, ASSUME_ARN, True),
        ("iam:AttachRolePolicy", NODE_ARN, "arn:aws:iam::aws:policy/AdministratorAccess", False),
        ("iam:AttachRolePolicy", NODE_ARN, ACCESS_POLICY_ARN, False),
        ("iam:DetachRolePolicy", NODE_ARN, f"arn:aws:iam::{TARGET}:policy/other", False),
        ("iam:AttachRolePolicy", NODE_ARN, None, False),
        ("iam:AttachRolePolicy", ACCESS_ARN, ASSUME_ARN, False),
        ("iam:AttachRolePolicy", f"arn:aws:iam::{TARGET}:role/other", ASSUME_ARN, False),
    ],
)
def test_only_the_assume_policy_can_be_attached_and_only_to_the_node_role(action, resource, policy_arn, allowed):
    context = {"iam:PolicyARN": policy_arn} if policy_arn else None
    decision = evaluate_identity(bootstrap_role(TARGET).documents, action, resource, context=context)
    assert decision.allowed is allowed, decision.reason


def test_moto_treats_the_condition_as_met_whatever_is_attached():
    """moto's evaluator has no request context for identity policies and skips ArnEquals."""
    moto_view = [IAMPolicy(json.dumps(doc)) for doc in bootstrap_role(TARGET).documents]
    results = {p.is_action_permitted("iam:AttachRolePolicy", NODE_ARN) for p in moto_view}
    assert PermissionResult.PERMITTED in results, "moto would let any policy be attached to the node role"


def test_moto_never_matches_a_policy_arn_with_the_resource_it_is_given():
    """moto passes `*` as the resource of policy actions: the emulator computes the real ARN."""
    moto_view = [IAMPolicy(json.dumps(doc)) for doc in bootstrap_role(TARGET).documents]
    given = {p.is_action_permitted("iam:GetPolicy", "*") for p in moto_view}
    real = {p.is_action_permitted("iam:GetPolicy", ASSUME_ARN) for p in moto_view}
    assert PermissionResult.PERMITTED not in given and PermissionResult.PERMITTED in real


def test_parliament_finds_nothing_in_the_identity_policy():
    parliament = pytest.importorskip("parliament")
    aws_managed = "arn:aws:iam::aws:policy/*"
    for doc in bootstrap_role(TARGET).documents:
        findings = parliament.analyze_policy_string(json.dumps(doc)).findings
        # parliament wants 12 digits where AWS managed policies have the account `aws`.
        real = [f for f in findings if not (f.issue == "INVALID_ARN" and aws_managed in json.dumps(f.location))]
        assert [(f.issue, f.detail) for f in real] == []
