"""Least privilege of the step roles: each function holds exactly the calls its step makes.

The table below is the contract, read from functions/<step>/app.py and the layer code each
step calls. IAM in the target accounts goes through the automation role (bootstrap/), so a
step role needs `sts:AssumeRole` on it only when the step reaches a target account. A
change that widens a policy (another action, a broader resource, a dropped condition, a
SAM policy template, an AWS managed policy) fails here; so does one that narrows a
policy below what the code calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.conftest import ACCOUNT, PARTITIONS, deployed_resolver, resources_of

AUTOMATION_ROLE = "automation role in any target account"
SECRETS = "secrets <EXTERNAL_ID_SECRET_PREFIX>/*"
REGISTRY = "table ClusterRegistryTable"
REGISTRY_INDEX = "index ClusterRegistryTable/byClusterManagerAccount"
LOCKS = "table LocksTable"
ANY = "*"

#: locks.acquire: TransactWriteItems of Put items, which IAM authorizes as PutItem per item.
IN_TRANSACTION = {"ForAnyValue:StringEquals": {"dynamodb:EnclosingOperation": ["TransactWriteItems"]}}
#: external_ids.ensure_external_id tags the new secret with the cluster id, nothing else.
CLUSTER_TAG_ONLY = {"ForAllValues:StringEquals": {"aws:TagKeys": ["atc-xaccount:cluster-id"]}}

Grant = tuple[str, str, str]


def grant(action: str, resource: str, condition: dict[str, Any] | None = None) -> Grant:
    return action, resource, json.dumps(condition, sort_keys=True) if condition else ""


ASSUME = grant("sts:AssumeRole", AUTOMATION_ROLE)  # sessions.AccountSessions.credentials
READ_SECRET = grant("secretsmanager:GetSecretValue", SECRETS)  # external_ids.read_external_id
VALIDATE = grant("access-analyzer:ValidatePolicy", ANY)  # analyzer.validate; no resource type

EXPECTED: dict[str, set[Grant]] = {
    # model.parse_event only.
    "ValidateFunction": set(),
    # iam_ops reads in both accounts; the stored ID sizes the trust grant; lint before writing.
    "PreflightFunction": {ASSUME, READ_SECRET, VALIDATE},
    # external_ids.ensure_external_id: read, then create (with the cluster tag) or put.
    "ResolveExternalIdFunction": {
        READ_SECRET,
        grant("secretsmanager:CreateSecret", SECRETS),
        grant("secretsmanager:PutSecretValue", SECRETS),
        grant("secretsmanager:TagResource", SECRETS, CLUSTER_TAG_ONLY),
    },
    "EnsureAssumePolicyFunction": {ASSUME, VALIDATE},
    "AttachPolicyFunction": {ASSUME},
    "MergeTrustFunction": {ASSUME, READ_SECRET, VALIDATE},
    "VerifyFunction": {ASSUME, READ_SECRET},
    # locks.acquire, and locks._first_holder to name who holds a busy lock.
    "AcquireLocksFunction": {
        grant("dynamodb:PutItem", LOCKS, IN_TRANSACTION),
        grant("dynamodb:GetItem", LOCKS),
    },
    # locks.release: a conditional DeleteItem per key.
    "ReleaseLocksFunction": {grant("dynamodb:DeleteItem", LOCKS)},
    # The stored ID's fingerprint goes into the record; registry.put reads, then writes.
    "RecordFunction": {READ_SECRET, grant("dynamodb:GetItem", REGISTRY), grant("dynamodb:PutItem", REGISTRY)},
    # Undo in the target accounts; delete a secret this execution created. The registry is
    # left alone (steps/compensate.py).
    "CompensateFunction": {ASSUME, READ_SECRET, grant("secretsmanager:DeleteSecret", SECRETS)},
    "LoadRegistrationFunction": {grant("dynamodb:GetItem", REGISTRY)},
    # registry.get, and registry.clusters_of_cluster_manager (Query on the GSI).
    "RevokeTrustFunction": {
        ASSUME,
        READ_SECRET,
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:Query", REGISTRY_INDEX),
    },
    "RevokePolicyFunction": {ASSUME, grant("dynamodb:Query", REGISTRY_INDEX)},
    # external_ids.delete_external_id (read, delete); registry.set_state (UpdateItem).
    "ForgetFunction": {
        READ_SECRET,
        grant("secretsmanager:DeleteSecret", SECRETS),
        grant("dynamodb:UpdateItem", REGISTRY),
    },
    # registry.registered: Scan with a filter on state.
    "ListRegisteredFunction": {grant("dynamodb:Scan", REGISTRY)},
    "AuditClusterFunction": {ASSUME, READ_SECRET},
}


def _labels(template: dict[str, Any], partition: str, region: str) -> dict[str, str]:
    """Resolved resource ARN -> label; built from the names the steps are configured with."""
    role = template["Parameters"]["AutomationRoleName"]["Default"]
    prefix = template["Globals"]["Function"]["Environment"]["Variables"]["EXTERNAL_ID_SECRET_PREFIX"]
    table = f"arn:{partition}:dynamodb:{region}:{ACCOUNT}:table"
    return {
        f"arn:{partition}:iam::*:role/{role}": AUTOMATION_ROLE,
        f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{prefix}/*": SECRETS,
        f"{table}/ClusterRegistryTable": REGISTRY,
        f"{table}/ClusterRegistryTable/index/byClusterManagerAccount": REGISTRY_INDEX,
        f"{table}/LocksTable": LOCKS,
        "*": ANY,
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_statements(template: dict[str, Any], function: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every statement the function's role gets from the template, and what is not allowed."""
    policies = template["Resources"][function]["Properties"].get("Policies") or []
    managed = resources_of(template, "AWS::IAM::ManagedPolicy")
    statements: list[dict[str, Any]] = []
    problems: list[str] = []
    if "Role" in template["Resources"][function]["Properties"]:
        problems.append(f"{function}: a Role of its own bypasses the table")
    for policy in _as_list(policies):
        if isinstance(policy, dict) and set(policy) == {"Ref"} and policy["Ref"] in managed:
            statements.extend(_as_list(managed[policy["Ref"]]["Properties"]["PolicyDocument"]["Statement"]))
        elif isinstance(policy, dict) and set(policy) == {"Statement"}:
            statements.extend(_as_list(policy["Statement"]))
        else:
            problems.append(f"{function}: {policy!r} is not an explicit statement or a managed policy of this template")
    return statements, problems


def step_grants(template: dict[str, Any], partition: str, region: str) -> tuple[dict[str, set[Grant]], list[str]]:
    resolver = deployed_resolver(template, partition, region)
    labels = _labels(template, partition, region)
    grants: dict[str, set[Grant]] = {}
    problems: list[str] = []
    glob = (template.get("Globals") or {}).get("Function") or {}
    problems.extend(f"Globals.Function.{key} applies to every step" for key in ("Policies", "Role") if key in glob)
    for function in resources_of(template, "AWS::Serverless::Function"):
        statements, found = function_statements(template, function)
        problems.extend(found)
        grants[function] = set()
        for stmt in resolver.resolve(statements):
            sid = stmt.get("Sid", "?")
            for key in ("NotAction", "NotResource", "NotPrincipal"):
                if key in stmt:
                    problems.append(f"{function} {sid}: {key} grants everything it does not name")
            if stmt.get("Effect") != "Allow":
                continue
            condition = stmt.get("Condition")
            for action in _as_list(stmt.get("Action", [])):
                if "*" in action or "?" in action:
                    problems.append(f"{function} {sid}: wildcard action {action}")
                for resource in _as_list(stmt.get("Resource", [])):
                    grants[function].add(grant(action, labels.get(resource, resource), condition))
    return grants, problems


def violations(template: dict[str, Any], partition: str = "aws", region: str = "us-east-1") -> list[str]:
    """Differences from EXPECTED, and constructs that would let a policy grow unseen."""
    grants, problems = step_grants(template, partition, region)
    for function in sorted(set(grants) | set(EXPECTED)):
        if function not in EXPECTED:
            problems.append(f"{function}: not in the expected table")
            continue
        if function not in grants:
            problems.append(f"{function}: in the expected table, not in the template")
            continue
        extra, missing = grants[function] - EXPECTED[function], EXPECTED[function] - grants[function]
        problems.extend(f"{function}: grants {g} beyond what it calls" for g in sorted(extra))
        problems.extend(f"{function}: lacks {g}, which its step calls" for g in sorted(missing))
    return problems


@pytest.mark.parametrize(("partition", "region"), PARTITIONS)
def test_each_step_role_holds_exactly_what_its_step_calls(template, partition, region):
    assert violations(template, partition, region) == []


def test_only_steps_that_reach_target_accounts_may_assume_the_automation_role():
    reaching = {fn for fn, grants in EXPECTED.items() if ASSUME in grants}
    assert reaching == {
        "PreflightFunction",
        "EnsureAssumePolicyFunction",
        "AttachPolicyFunction",
        "MergeTrustFunction",
        "VerifyFunction",
        "CompensateFunction",
        "RevokeTrustFunction",
        "RevokePolicyFunction",
        "AuditClusterFunction",
    }
    assert {fn for fn, grants in EXPECTED.items() if VALIDATE in grants} == {
        "PreflightFunction",
        "EnsureAssumePolicyFunction",
        "MergeTrustFunction",
    }


def _inline(template: dict[str, Any], function: str) -> dict[str, Any]:
    policies = template["Resources"][function]["Properties"]["Policies"]
    return next(p for p in policies if isinstance(p, dict) and "Statement" in p)["Statement"][0]


def test_a_widened_action_is_caught(template):
    _inline(template, "AcquireLocksFunction")["Action"].append("dynamodb:Scan")
    assert any("AcquireLocksFunction" in v and "dynamodb:Scan" in v for v in violations(template))


def test_a_wildcard_action_is_caught(template):
    _inline(template, "ReleaseLocksFunction")["Action"] = ["dynamodb:*"]
    assert "ReleaseLocksFunction ReleaseOwnLocks: wildcard action dynamodb:*" in violations(template)


def test_a_broader_resource_is_caught(template):
    _inline(template, "LoadRegistrationFunction")["Resource"] = "*"
    assert any("LoadRegistrationFunction: grants ('dynamodb:GetItem', '*'" in v for v in violations(template))


def test_a_dropped_condition_is_caught(template):
    del _inline(template, "AcquireLocksFunction")["Condition"]
    assert any("AcquireLocksFunction: grants ('dynamodb:PutItem'" in v for v in violations(template))


@pytest.mark.parametrize(
    "policy",
    [
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "LocksTable"}}},  # adds Scan, BatchWrite, ...
        "AmazonDynamoDBFullAccess",
        {"Ref": "NotAPolicyOfThisTemplate"},
    ],
)
def test_policy_templates_and_managed_policies_from_elsewhere_are_refused(template, policy):
    template["Resources"]["ReleaseLocksFunction"]["Properties"]["Policies"].append(policy)
    assert any(v.startswith("ReleaseLocksFunction: ") and repr(policy) in v for v in violations(template))


def test_a_widened_shared_managed_policy_is_caught_in_every_step_using_it(template):
    policy = template["Resources"]["ExternalIdSecretsReadPolicy"]["Properties"]["PolicyDocument"]
    policy["Statement"][0]["Action"] = ["secretsmanager:GetSecretValue", "secretsmanager:ListSecrets"]
    users = {fn for fn, grants in EXPECTED.items() if READ_SECRET in grants} - {
        "ResolveExternalIdFunction",
        "CompensateFunction",
        "ForgetFunction",
    }
    flagged = {v.split(":")[0] for v in violations(template) if "secretsmanager:ListSecrets" in v}
    assert flagged == users
