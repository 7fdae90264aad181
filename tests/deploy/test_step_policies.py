"""Least privilege of the step roles: each function holds exactly the calls its step makes.

The table below is the contract, read from functions/<step>/app.py and the layer code each
step calls. IAM in the target accounts goes through the automation role (bootstrap/), so a
step role needs `sts:AssumeRole` on it only when the step reaches a target account. A
change that widens a policy (another action, a broader resource, a dropped condition, a
SAM policy template, an AWS managed policy) fails here; so does one that narrows a
policy below what the code calls.
"""

from __future__ import annotations

import io
import json
from fnmatch import fnmatchcase
from types import SimpleNamespace
from typing import Any

import pytest

from atc_xaccount.model import Defaults
from atc_xaccount.steps import bulk
from tests.deploy.conftest import ACCOUNT, PARTITIONS, ROOT, STACK, deployed_resolver, resources_of

AUTOMATION_ROLE = "automation role in any target account"
SECRETS = "secrets <EXTERNAL_ID_SECRET_PREFIX>/*"
#: The access keys' own secrets (access_key_custody: <prefix>/<cluster>/access-key).
KEY_SECRETS = "secrets <EXTERNAL_ID_SECRET_PREFIX>/*/access-key*"
#: The clusters' Node API users, named by the operator under NodeApiSecretPrefix.
NODE_USERS = "secrets <NodeApiSecretPrefix>*"
REGISTRY = "table ClusterRegistryTable"
REGISTRY_INDEX = "index ClusterRegistryTable/byClusterManagerAccount"
LOCKS = "table LocksTable"
#: The bulk bucket's prefixes: uploads/<file> (the CLI's upload), uploads/<file>.items.json
#: (what Prepare writes for the Distributed Map), reports/<execution>.json (Report).
BULK_UPLOADS = "objects BulkBucket/uploads/*"
BULK_ITEMS = "objects BulkBucket/uploads/*.items.json"
BULK_REPORTS = "objects BulkBucket/reports/*"
#: uploads/<file>.rejected.json (Prepare's rejected rows), results/<execution>/... (the
#: Distributed Map's ResultWriter files, which Report reads).
BULK_REJECTED = "objects BulkBucket/uploads/*.rejected.json"
BULK_RESULTS = "objects BulkBucket/results/*"
ANY = "*"
#: The EventBridge rule Step Functions manages for its .sync integration with Step Functions.
SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"

#: locks.acquire*: TransactWriteItems of Update items, which IAM authorizes as UpdateItem per item.
IN_TRANSACTION = {"ForAnyValue:StringEquals": {"dynamodb:EnclosingOperation": ["TransactWriteItems"]}}
#: external_ids.ensure_external_id tags the new secret with the cluster id, nothing else.
CLUSTER_TAG_ONLY = {"ForAllValues:StringEquals": {"aws:TagKeys": ["atc-xaccount:cluster-id"]}}

Grant = tuple[str, str, str]


def grant(action: str, resource: str, condition: dict[str, Any] | None = None) -> Grant:
    return action, resource, json.dumps(condition, sort_keys=True) if condition else ""


#: sessions.AccountSessions.credentials, only in the accounts AllowedAccountPairs names (none by
#: default: fail closed) and, with EventSourceOrganizationId, its organization's.
IN_THE_PAIRS = {"StringLike": {"aws:ResourceAccount": [""]}}
ASSUME = grant("sts:AssumeRole", AUTOMATION_ROLE, IN_THE_PAIRS)
#: external_ids.fingerprints: the HMAC key of the external ID fingerprints, once per container.
FINGERPRINT_KEY = "secret FingerprintKey"
READ_KEY = grant("secretsmanager:GetSecretValue", FINGERPRINT_KEY)
READ_SECRET = grant("secretsmanager:GetSecretValue", SECRETS)  # external_ids.read_external_id
VALIDATE = grant("access-analyzer:ValidatePolicy", ANY)  # analyzer.validate; no resource type

EXPECTED: dict[str, set[Grant]] = {
    # model.parse_event and authorization; for an event that gives an externalId,
    # steps.validate.move_external_id: registry.get (the owner), staged_ids.stage (read,
    # then create with the cluster tag or put a staged version), its keyed fingerprint.
    "ValidateFunction": {
        READ_KEY,
        grant("dynamodb:GetItem", REGISTRY),
        READ_SECRET,
        grant("secretsmanager:CreateSecret", SECRETS),
        grant("secretsmanager:PutSecretValue", SECRETS),
        grant("secretsmanager:TagResource", SECRETS, CLUSTER_TAG_ONLY),
    },
    # iam_ops reads in both accounts; the stored ID sizes the trust grant; lint before writing;
    # locks.acquire_if_unchanged (TransactWriteItems of Update items, authorized per item);
    # registry.get when everything is in place (is the registry up to date too?).
    "PreflightFunction": {
        READ_KEY,
        ASSUME,
        READ_SECRET,
        VALIDATE,
        grant("dynamodb:UpdateItem", LOCKS, IN_TRANSACTION),
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:GetItem", LOCKS),  # locking.fenced: the hash the last writer left
    },
    # The policy and its attachment, from preflight's plan (which preflight validated); lint
    # again only when the policy appeared since (EntityAlreadyExists: read it, merge, lint).
    # Grouped (steps/commit.py): the policy's queue and lock, the fence, the note of the
    # write (GetItem/UpdateItem, TransactWriteItems of Update items on the locks table), and
    # in the releasing transaction the served clusters' users and the policy's provenance.
    "EnsureAssumePolicyFunction": {
        ASSUME,
        VALIDATE,
        grant("dynamodb:GetItem", LOCKS),
        grant("dynamodb:UpdateItem", LOCKS),
        grant("dynamodb:UpdateItem", REGISTRY, IN_TRANSACTION),
    },
    # external_ids.create_external_id / ensure_external_id (create with the cluster tag, or
    # read and put), then the trust merge.
    "MergeTrustFunction": {
        READ_KEY,
        ASSUME,
        READ_SECRET,
        grant("secretsmanager:CreateSecret", SECRETS),
        grant("secretsmanager:TagResource", SECRETS, CLUSTER_TAG_ONLY),
        # staged_ids.promote: the ID Validate staged becomes the cluster's once granted.
        grant("secretsmanager:UpdateSecretVersionStage", SECRETS),
        grant("dynamodb:Query", REGISTRY_INDEX),  # users.others (a shared ID stays): the GSI ...
        grant("dynamodb:GetItem", REGISTRY),  # ... and the users item, read consistently
        # Grouped (steps/commit.py): queue, lock, fence, note; the served clusters' users.
        grant("dynamodb:GetItem", LOCKS),
        grant("dynamodb:UpdateItem", LOCKS),
        grant("dynamodb:UpdateItem", REGISTRY, IN_TRANSACTION),
    },
    # Evaluation of the documents the write steps left, for the external ID in the
    # cluster's secret (external_ids.require_external_id): no IAM call.
    "VerifyFunction": {READ_SECRET, READ_KEY},
    # locks.acquire, and locks._first_holder to name who holds a busy lock.
    "AcquireLocksFunction": {
        grant("dynamodb:UpdateItem", LOCKS, IN_TRANSACTION),
        grant("dynamodb:GetItem", LOCKS),
    },
    # locks.release: one transaction of conditional Update items, or UpdateItem per key.
    "ReleaseLocksFunction": {grant("dynamodb:UpdateItem", LOCKS)},
    # registry.update_item and the lock release, in one transaction (or one by one).
    "RecordFunction": {grant("dynamodb:UpdateItem", REGISTRY), grant("dynamodb:UpdateItem", LOCKS)},
    # Undo in the target accounts; delete a secret this execution created; what it cannot
    # undo goes on the cluster's record (registry.record_left_behind), and a retry that
    # finishes takes it off again (registry.clear_left_behind: a conditional DeleteItem).
    # A grouped change is removed as an offboarding removes it (steps/group_undo.py): its
    # lock, fenced reads, the note of each write; users, provenance, the GSI.
    "CompensateFunction": {
        READ_KEY,
        ASSUME,
        READ_SECRET,
        grant("dynamodb:UpdateItem", REGISTRY),
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:DeleteItem", REGISTRY),
        grant("dynamodb:Query", REGISTRY_INDEX),
        grant("dynamodb:GetItem", LOCKS),
        grant("dynamodb:UpdateItem", LOCKS),
        grant("secretsmanager:DeleteSecret", SECRETS),
        grant("secretsmanager:UpdateSecretVersionStage", SECRETS),  # external_ids.restore_previous
    },
    # The key's secret (access_key_custody: read, create with the cluster tag), the external ID
    # it carries, the node user (node_api.read_node_user); the registry's fingerprint and key record.
    "EnsureAccessKeyFunction": {
        READ_KEY,  # the key's external ID against the registry's keyed fingerprint
        READ_SECRET,
        grant("secretsmanager:GetSecretValue", NODE_USERS),
        grant("secretsmanager:CreateSecret", KEY_SECRETS),
        grant("secretsmanager:TagResource", KEY_SECRETS, CLUSTER_TAG_ONLY),
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:UpdateItem", REGISTRY),
    },
    # Zero-touch rotation: the pending and current IDs, the key's secret, the node user; the
    # key's record (which ID it carries, by keyed fingerprint).
    "RotateAccessKeyFunction": {
        READ_KEY,
        READ_SECRET,
        grant("secretsmanager:GetSecretValue", NODE_USERS),
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:UpdateItem", REGISTRY),
    },
    # Deregistration: the registry's key record, the node user, then the key's secret goes.
    "DeleteAccessKeyFunction": {
        grant("secretsmanager:GetSecretValue", NODE_USERS),
        grant("secretsmanager:GetSecretValue", KEY_SECRETS),
        grant("secretsmanager:DeleteSecret", KEY_SECRETS),
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:UpdateItem", REGISTRY),
    },
    "LoadRegistrationFunction": {grant("dynamodb:GetItem", REGISTRY)},
    # registry.mark_revoking (UpdateItem) before the first revoke; registry.get, and
    # registry.clusters_of_cluster_manager (Query on the GSI).
    "RevokeTrustFunction": {
        READ_KEY,
        ASSUME,
        READ_SECRET,
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:UpdateItem", REGISTRY),
        grant("dynamodb:Query", REGISTRY_INDEX),
        grant("dynamodb:GetItem", LOCKS),  # locking.fenced
        grant("dynamodb:UpdateItem", LOCKS),  # locking.noted
    },
    # registry.clusters_of_cluster_manager; provenance.read_provenance / forget_provenance.
    "RevokePolicyFunction": {
        ASSUME,
        grant("dynamodb:GetItem", LOCKS),  # locking.fenced
        grant("dynamodb:UpdateItem", LOCKS),  # locking.noted
        grant("dynamodb:Query", REGISTRY_INDEX),
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:UpdateItem", REGISTRY),
        grant("dynamodb:DeleteItem", REGISTRY),
    },
    # external_ids.delete_external_id (read, delete); registry.set_state (UpdateItem).
    "ForgetFunction": {
        READ_SECRET,
        grant("secretsmanager:DeleteSecret", SECRETS),
        grant("dynamodb:UpdateItem", REGISTRY),
    },
    # registry.registered: Scan with a filter on state.
    # steps.rotate.start: the current ID against the registry, a pending AWSPENDING version (taken
    # off again when its grant fails), the grant; steps.rotate.finish: the proof, the withdrawal
    # (kept for clusters sharing the ID: the GSI), the promotion, registry.put of the fingerprint.
    "RotateStartFunction": {
        ASSUME,
        READ_KEY,
        grant("dynamodb:GetItem", REGISTRY),
        READ_SECRET,
        grant("secretsmanager:PutSecretValue", SECRETS),
        grant("secretsmanager:UpdateSecretVersionStage", SECRETS),
        grant("dynamodb:GetItem", LOCKS),  # locking.fenced
        grant("dynamodb:UpdateItem", LOCKS),  # locking.noted
    },
    # users.others (the users item, the GSI); the new fingerprint and users entry in one
    # transaction of Update items.
    "RotateFinishFunction": {
        ASSUME,
        READ_KEY,
        grant("dynamodb:GetItem", REGISTRY),
        grant("dynamodb:UpdateItem", REGISTRY),
        grant("dynamodb:Query", REGISTRY_INDEX),
        grant("dynamodb:GetItem", LOCKS),  # locking.fenced
        grant("dynamodb:UpdateItem", LOCKS),  # locking.noted
        READ_SECRET,
        grant("secretsmanager:UpdateSecretVersionStage", SECRETS),
    },
    "ListRegisteredFunction": {grant("dynamodb:Scan", REGISTRY)},
    # registry.get: what a failed compensation left (LeftByFailedCompensation).
    "AuditClusterFunction": {ASSUME, READ_SECRET, READ_KEY, grant("dynamodb:GetItem", REGISTRY)},
    # steps/bulk.prepare: GetObject on the upload, PutObject of <upload>.items.json only.
    "PrepareBulkFunction": {
        grant("s3:GetObject", BULK_UPLOADS),
        grant("s3:PutObject", BULK_ITEMS),
        grant("s3:PutObject", BULK_REJECTED),
        # A row's externalId into its cluster's secret, as Validate does (steps.bulk._move_external_ids).
        READ_KEY,
        grant("dynamodb:GetItem", REGISTRY),
        READ_SECRET,
        grant("secretsmanager:CreateSecret", SECRETS),
        grant("secretsmanager:PutSecretValue", SECRETS),
        grant("secretsmanager:TagResource", SECRETS, CLUSTER_TAG_ONLY),
    },
    # steps/bulk.report: reads the ResultWriter's files and the rejected rows, writes
    # reports/<execution>.json.
    "ReportBulkFunction": {
        grant("s3:GetObject", BULK_RESULTS),
        grant("s3:GetObject", BULK_REJECTED),
        grant("s3:PutObject", BULK_REPORTS),
    },
}


def _labels(template: dict[str, Any], partition: str, region: str) -> dict[str, str]:
    """Resolved resource ARN -> label; built from the names the steps are configured with."""
    role = template["Parameters"]["AutomationRoleName"]["Default"]
    prefix = template["Globals"]["Function"]["Environment"]["Variables"]["EXTERNAL_ID_SECRET_PREFIX"]
    node_users = template["Parameters"]["NodeApiSecretPrefix"]["Default"]
    table = f"arn:{partition}:dynamodb:{region}:{ACCOUNT}:table"
    bulk = deployed_resolver(template, partition, region).attributes[("BulkBucket", "Arn")]
    return {
        f"arn:{partition}:iam::*:role/{role}": AUTOMATION_ROLE,
        f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{prefix}/*": SECRETS,
        f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{prefix}/*/access-key*": KEY_SECRETS,
        f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{node_users}*": NODE_USERS,
        f"{table}/ClusterRegistryTable": REGISTRY,
        f"{table}/ClusterRegistryTable/index/byClusterManagerAccount": REGISTRY_INDEX,
        f"{table}/LocksTable": LOCKS,
        deployed_resolver(template, partition, region).refs["FingerprintKey"]: FINGERPRINT_KEY,
        f"{bulk}/uploads/*": BULK_UPLOADS,
        f"{bulk}/uploads/*.items.json": BULK_ITEMS,
        f"{bulk}/reports/*": BULK_REPORTS,
        f"{bulk}/uploads/*.rejected.json": BULK_REJECTED,
        f"{bulk}/results/*": BULK_RESULTS,
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
        "MergeTrustFunction",
        "CompensateFunction",
        "RevokeTrustFunction",
        "RevokePolicyFunction",
        "AuditClusterFunction",
        "RotateStartFunction",
        "RotateFinishFunction",
    }
    # MergeTrust always gets preflight's plan (the ASL passes it), which preflight validated.
    assert {fn for fn, grants in EXPECTED.items() if VALIDATE in grants} == {
        "PreflightFunction",
        "EnsureAssumePolicyFunction",
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
    assert any("AcquireLocksFunction: grants ('dynamodb:UpdateItem'" in v for v in violations(template))


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
        "MergeTrustFunction",
        "CompensateFunction",
        "ForgetFunction",
        "ValidateFunction",  # its own StageExternalIds statement
        "PrepareBulkFunction",
        "RotateStartFunction",  # its own StagePendingExternalId statement
        "RotateFinishFunction",
    }
    flagged = {v.split(":")[0] for v in violations(template) if "secretsmanager:ListSecrets" in v}
    assert flagged == users


# --- the bulk steps: what the code calls, against what the template grants ---------------


class _RecordingS3:
    """An S3 client that records (action, key) of every call the bulk steps make."""

    def __init__(self, body: bytes, objects: dict[str, bytes] | None = None) -> None:
        self.body = body
        self.objects = objects or {}
        self.calls: list[tuple[str, str]] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append(("s3:GetObject", Key))
        return {"Body": io.BytesIO(self.objects.get(Key, self.body))}

    def put_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self.calls.append(("s3:PutObject", Key))
        return {}


def _bulk_calls(step: str) -> list[tuple[str, str]]:
    """Run steps/bulk.<step> on the sample file, uploaded where the CLI puts it."""
    key = "uploads/1a2b3c4d-bulk-registrations.csv"  # aws/commands.register_bulk
    folder = "results/bulk-0123456789ab/5f2c"  # the ResultWriter's <Prefix>/<map run id>
    row = {"line": 2, "clusterId": "bulk-east-1", "status": "SUCCEEDED"}
    objects = {
        f"{folder}/manifest.json": json.dumps(
            {"ResultFiles": {"SUCCEEDED": [{"Key": f"{folder}/SUCCEEDED_0.json"}], "FAILED": []}}
        ).encode(),
        f"{folder}/SUCCEEDED_0.json": json.dumps([{"Status": "SUCCEEDED", "Output": json.dumps(row)}]).encode(),
        f"{key}.rejected.json": json.dumps([{"line": 4, "error": "InvalidEvent"}]).encode(),
    }
    s3 = _RecordingS3((ROOT / "events" / "bulk-registrations.csv").read_bytes(), objects)
    ctx: Any = SimpleNamespace(
        sessions=SimpleNamespace(local_client=lambda service: s3), defaults=Defaults(), execution="bulk-exec"
    )
    if step == "prepare":
        bulk.prepare("bucket", key, ctx)
    else:
        manifest = {"Bucket": "bucket", "Key": f"{folder}/manifest.json"}
        bulk.report("bucket", key, manifest, f"{key}.rejected.json", "bulk-0123456789ab", ctx)
    return s3.calls


@pytest.mark.parametrize(("function", "step"), [("PrepareBulkFunction", "prepare"), ("ReportBulkFunction", "report")])
def test_the_bulk_steps_calls_are_exactly_what_their_roles_grant(template, function, step):
    """Every S3 call the step makes is granted, and every S3 grant is used by a call."""
    resolver = deployed_resolver(template)
    objects = resolver.attributes[("BulkBucket", "Arn")]
    statements, problems = function_statements(template, function)
    assert problems == []
    granted = {
        (action, resource)
        for stmt in resolver.resolve(statements)
        for action in _as_list(stmt["Action"])
        for resource in _as_list(stmt["Resource"])
        if action.startswith("s3:")  # Prepare's secrets and registry grants: tests/leastpriv, the table above
    }
    calls = _bulk_calls(step)
    assert calls
    used = set()
    for action, key in calls:
        matching = {(a, r) for a, r in granted if a == action and fnmatchcase(f"{objects}/{key}", r)}
        assert matching, f"{function}: {action} on {key} is not granted"
        used |= matching
    assert used == granted, f"{function}: granted but never called: {granted - used}"


# --- the bulk state machine: the Distributed Map's documented permissions ----------------


def _bulk_machine_grants(template: dict[str, Any], partition: str, region: str) -> set[tuple[str, str]]:
    resolver = deployed_resolver(template, partition, region)
    grants = set()
    for policy in template["Resources"]["BulkStateMachine"]["Properties"]["Policies"]:
        if isinstance(policy, dict) and "Statement" in policy:
            for stmt in resolver.resolve(policy["Statement"]):
                assert stmt["Effect"] == "Allow" and "Condition" not in stmt, stmt
                for action in _as_list(stmt["Action"]):
                    grants |= {(action, resource) for resource in _as_list(stmt["Resource"])}
    return grants


@pytest.mark.parametrize(("partition", "region"), PARTITIONS)
def test_the_bulk_state_machine_holds_what_the_distributed_map_and_sync_onboarding_need(template, partition, region):
    """AWS's policies for a Distributed Map (children are executions of this state machine,
    named <machine>/<map label>:<id>) and for states:startExecution.sync:2; nothing that
    reaches another state machine, in this stack or another."""
    props = template["Resources"]["BulkStateMachine"]["Properties"]
    name = deployed_resolver(template, partition, region).resolve(props["Name"])
    # aws/deployment.discover finds state machines by their logical ID at the start of the name.
    assert name == f"BulkStateMachine-{STACK}"
    states = f"arn:{partition}:states:{region}:{ACCOUNT}"
    objects = deployed_resolver(template, partition, region).attributes[("BulkBucket", "Arn")]
    logs = {
        (action, "*")
        for action in (
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        )
    }
    assert _bulk_machine_grants(template, partition, region) == logs | {
        # ItemReader: the items file Prepare wrote, not the upload.
        ("s3:GetObject", f"{objects}/uploads/*.items.json"),
        # ResultWriter: each row's result under results/<execution>/ (AWS's ResultWriter policy).
        ("s3:PutObject", f"{objects}/results/*"),
        ("s3:GetObject", f"{objects}/results/*"),
        ("s3:ListMultipartUploadParts", f"{objects}/results/*"),
        ("s3:AbortMultipartUpload", f"{objects}/results/*"),
        # Distributed Map: its child executions.
        ("states:StartExecution", f"{states}:stateMachine:{name}"),
        ("states:DescribeExecution", f"{states}:execution:{name}/*"),
        ("states:StopExecution", f"{states}:execution:{name}/*"),
        # startExecution.sync:2 of the onboarding state machine.
        ("states:StartExecution", f"{states}:stateMachine:OnboardStateMachine"),
        ("states:DescribeExecution", f"{states}:execution:OnboardStateMachine:*"),
        ("states:StopExecution", f"{states}:execution:OnboardStateMachine:*"),
        ("events:PutTargets", f"arn:{partition}:events:{region}:{ACCOUNT}:rule/{SYNC_RULE}"),
        ("events:PutRule", f"arn:{partition}:events:{region}:{ACCOUNT}:rule/{SYNC_RULE}"),
        ("events:DescribeRule", f"arn:{partition}:events:{region}:{ACCOUNT}:rule/{SYNC_RULE}"),
    }
    invoked = {p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in props["Policies"] if "LambdaInvokePolicy" in p}
    # Phase 1 (ReserveEach, steps/reserve.py) runs Validate, Preflight and MergeTrust's reserve per row;
    assert invoked == {
        "PrepareBulkFunction",
        "ReportBulkFunction",
        "ValidateFunction",
        "PreflightFunction",
        "MergeTrustFunction",
        "CompensateFunction",  # phase 2: a failed or unstarted row's reservations withdrawn
    }
    assert len(props["Policies"]) == len(invoked) + 2  # no other SAM policy template
