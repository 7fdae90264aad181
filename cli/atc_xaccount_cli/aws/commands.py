"""The operator commands against a deployment: register, deregister, status, show, plan, audit,
snapshot, doctor, rotate.

Each returns (exit status, the JSON-able result `--json` prints); the click commands
(commands/) turn the result into a typed report. Operators read, workflows write (DESIGN
8): onboarding, offboarding, the audit and external ID rotation run in Step Functions;
plan, show, snapshot and the doctor run the layer's own code, read only, with the
operator's credentials, reading target accounts through the operators' read-only role
(bootstrap OperatorRoleName), never the automation role.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from atc_xaccount import external_ids, registry
from atc_xaccount.errors import AtcXaccountError
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps import rotate
from atc_xaccount.steps.plan import plan
from atc_xaccount.steps.validate import DEREGISTERED, REGISTERED, validate
from atc_xaccount_cli.aws.deployment import MACHINES, Deployment
from atc_xaccount_cli.errors import UsageError
from atc_xaccount_cli.executions import (
    ExecutionResult,
    Progress,
    StateRun,
    cause_message,
    compensation_json,
    describe,
    follow_execution,
)
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.inputs import read_bytes
from atc_xaccount_cli.paths import project_root

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
OnState = Callable[[StateRun], None] | None
OnProgress = Callable[[Progress], None] | None


class ExecutionNotFound(UsageError):
    """`status NAME`: no execution of that name (or ARN) in any of the deployment's state machines."""


def execution_name(kind: str, event: dict[str, Any], generation: int = 0) -> str:
    """Derived from the event and the cluster's registry generation.

    A duplicate delivery of one request gets the same name, so it shows as that execution
    (Step Functions keeps a name 90 days, and answers ExecutionAlreadyExists even for a
    closed one); after a deregistration the generation moves on, so registering the same
    event again is a new execution.
    """
    detail = event.get("detail", event)
    cluster = _NAME_UNSAFE.sub("-", str(detail.get("clusterId", "unknown")))[:40]
    digest = hashlib.sha256(f"{json.dumps(event, sort_keys=True)}#{generation}".encode()).hexdigest()[:12]
    return f"{kind}-{cluster}-{digest}"


def execution_json(result: ExecutionResult, machine: str) -> dict[str, Any]:
    return {
        "execution": result.name,
        "executionArn": result.arn,
        "stateMachine": machine,
        "status": result.status,
        "error": result.error,
        "cause": cause_message(result.cause),
        "output": result.output,
        "stateTransitions": result.transitions,
        "states": [s.to_json() for s in result.states],
        **compensation_json(result),
    }


def _exit_of(status: str) -> int:
    return Exit.OK if status in ("SUCCEEDED", "RUNNING") else Exit.FAILED


def start_and_follow(
    session: boto3.Session,
    deployment: Deployment,
    kind: str,
    execution_input: dict[str, Any],
    name: str,
    *,
    wait: bool,
    on_state: OnState = None,
    on_progress: OnProgress = None,
) -> tuple[int, dict[str, Any]]:
    sfn = session.client("stepfunctions")
    machine_arn = deployment.machine(kind)
    duplicate = False
    try:
        arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(execution_input))[
            "executionArn"
        ]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        duplicate = True
        arn = machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    if not wait:
        running = {"execution": name, "executionArn": arn, "stateMachine": MACHINES[kind], "status": "RUNNING"}
        return Exit.OK, {**running, "duplicate": duplicate, "states": []}
    result = follow_execution(sfn, arn, on_state=on_state, on_progress=on_progress, poll=0.5)
    return _exit_of(result.status), {**execution_json(result, MACHINES[kind]), "duplicate": duplicate}


def generation_of(session: boto3.Session, deployment: Deployment, cluster_id: str, *, deregistering: bool) -> int:
    """The cluster's registry generation (0 when it was never registered or there is no registry)."""
    table = deployment.tables.get("registry")
    if not table or not cluster_id:
        return 0
    entry = registry.get(session.client("dynamodb"), table, cluster_id)
    return registry.generation(entry, deregistering=deregistering)


def register(
    session: boto3.Session,
    deployment: Deployment,
    event: dict[str, Any],
    *,
    kind: str,
    wait: bool,
    on_state: OnState = None,
    on_progress: OnProgress = None,
) -> tuple[int, dict[str, Any]]:
    """Start the onboarding (or offboarding) for one event and follow it to its end."""
    label = "register" if kind == "onboard" else "deregister"
    # A manual execution takes the detail alone (DESIGN 3.1); the name keeps the whole event.
    detail = event.get("detail", event)
    cluster = str(detail.get("clusterId", "")) if isinstance(detail, dict) else ""
    generation = generation_of(session, deployment, cluster, deregistering=kind == "offboard")
    name = execution_name(label, event, generation)
    return start_and_follow(
        session, deployment, kind, detail, name, wait=wait, on_state=on_state, on_progress=on_progress
    )


def put_on_bus(
    session: boto3.Session, deployment: Deployment, event: dict[str, Any], *, kind: str, source: str
) -> tuple[int, dict[str, Any]]:
    """Put the event on the bus, as Cluster Manager's forwarder would; EventBridge starts the workflow."""
    detail = event.get("detail", event)
    detail_type = event.get("detail-type", REGISTERED if kind == "onboard" else DEREGISTERED)
    entry = {
        "Source": event.get("source", source),
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": deployment.event_bus,
    }
    sent = session.client("events").put_events(Entries=[entry])
    body = {
        "via": "events",
        "bus": deployment.event_bus,
        "detailType": detail_type,
        "clusterId": detail.get("clusterId") if isinstance(detail, dict) else None,
        "entries": sent.get("Entries", []),
    }
    return (Exit.FAILED if sent.get("FailedEntryCount", 0) else Exit.OK), body


def register_bulk(
    session: boto3.Session,
    deployment: Deployment,
    path: Path,
    *,
    wait: bool,
    on_state: OnState = None,
    on_progress: OnProgress = None,
) -> tuple[int, dict[str, Any]]:
    """Upload a registrations file and run the bulk workflow over it; exit 5 when rows failed."""
    if not deployment.bulk_bucket:
        raise UsageError("the deployment has no bulk bucket (BulkBucketName output); is it up to date?")
    body = read_bytes(path, "registrations file")
    key = f"uploads/{uuid.uuid4().hex[:8]}-{path.name}"
    session.client("s3").put_object(Bucket=deployment.bulk_bucket, Key=key, Body=body)
    execution_input = {"bucket": deployment.bulk_bucket, "key": key}
    name = f"bulk-{uuid.uuid4().hex[:12]}"
    code, result = start_and_follow(
        session, deployment, "bulk", execution_input, name, wait=wait, on_state=on_state, on_progress=on_progress
    )
    counts = ((result.get("output") or {}).get("report") or {}).get("counts") or {}
    if code == Exit.OK and set(counts) - {"SUCCEEDED"}:
        code = Exit.ROWS
    return code, result


def status(session: boto3.Session, deployment: Deployment, execution: str) -> tuple[int, dict[str, Any]]:
    sfn = session.client("stepfunctions")
    if execution.startswith("arn:"):
        candidates = [execution]
    else:
        machines = deployment.state_machines.values()
        candidates = [arn.replace(":stateMachine:", ":execution:") + f":{execution}" for arn in machines]
    for arn in candidates:
        try:
            result = describe(sfn, arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "ResourceNotFound"}:
                continue
            raise
        return _exit_of(result.status), execution_json(result, deployment.machine_kind(arn))
    raise ExecutionNotFound(
        f"no execution {execution} in any atc-xaccount state machine in {deployment.region} "
        "(`register` prints the execution's name; EventBridge-started ones are listed by "
        "`aws stepfunctions list-executions`)"
    )


def show(session: boto3.Session, deployment: Deployment, cluster_id: str) -> tuple[int, dict[str, Any]]:
    """The cluster's registration and its external ID (readable only with the secret's permission)."""
    ctx = deployment.step_context(session, f"show-{uuid.uuid4().hex[:8]}")
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, cluster_id)
    if entry is None:
        return Exit.FAILED, {"clusterId": cluster_id, "registered": False}
    name = external_ids.secret_name(ctx.secret_prefix, cluster_id)
    try:
        stored = external_ids.read_external_id(ctx.sessions.local_client("secretsmanager"), name)
        external_id: str | None = stored[1] if stored else None
        note = None if stored else "no secret: the cluster is not onboarded"
    except AtcXaccountError as exc:
        external_id, note = None, f"cannot read {name}: {exc}"
    return Exit.OK, {
        "clusterId": cluster_id,
        "registered": True,
        "state": entry.get("state"),
        "roleArn": entry.get("accessRoleArn"),
        "externalId": external_id,
        "externalIdSecret": name,
        "note": note,
        "registration": entry,
    }


def plan_event(session: boto3.Session, deployment: Deployment, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What an onboarding would change; a refusal (an AtcXaccountError) propagates to the caller."""
    ctx = deployment.step_context(session, f"plan-{uuid.uuid4().hex[:8]}", dry_run=True)
    request = ClusterRequest.from_dict(validate(event, ctx.defaults)["request"])
    # The trust change record is redacted already (iam_ops.write_trust_policy, dry run).
    return Exit.OK, plan(request, ctx)


def audit(
    session: boto3.Session, deployment: Deployment, *, on_state: OnState = None, on_progress: OnProgress = None
) -> tuple[int, dict[str, Any]]:
    """Run the audit now; exit 4 when it found drift, 1 when it could not check a cluster."""
    name = f"audit-{uuid.uuid4().hex[:12]}"
    code, body = start_and_follow(
        session, deployment, "audit", {}, name, wait=True, on_state=on_state, on_progress=on_progress
    )
    output = body.get("output") or {}
    clusters = output.get("clusters") or []
    body["drifted"] = [c for c in clusters if c.get("drift")]
    if code == Exit.OK and output.get("failed"):
        code = Exit.FAILED
    elif code == Exit.OK and (output.get("drifted") or body["drifted"]):
        code = Exit.DRIFT
    return code, body


def snapshot(session: boto3.Session, deployment: Deployment, accounts: list[str], *, direct: bool) -> dict[str, Any]:
    """The relevant IAM state of `accounts` in the world format (DESIGN 3.3).

    Through the operators' read-only role it reads only the named atc-* roles and policies
    (all it may read); `--direct` reads everything with the operator's own credentials.
    """
    from atc_xaccount_cli.local.world import snapshot_account, snapshot_named

    ctx = deployment.step_context(session, f"snapshot-{uuid.uuid4().hex[:8]}")
    names = ctx.defaults
    world: dict[str, Any] = {"accounts": {}}
    for account in accounts:
        if direct:
            world["accounts"][account] = snapshot_account(
                session,
                skip_roles={deployment.automation_role_name, deployment.operator_role_name},
                secret_prefix=None,
            )
            reader = session
        else:
            reader = boto3.Session(**ctx.sessions.credentials(account), region_name=deployment.region)
            world["accounts"][account] = snapshot_named(
                reader,
                roles=[names.node_role_name, names.access_role_name],
                policies=[names.assume_policy_name, names.access_policy_name],
            )
        bootstrap = bootstrap_overrides(reader, deployment, account, ctx.partition)
        if bootstrap:
            world["accounts"][account] = {"bootstrap": bootstrap, **world["accounts"][account]}
    return world


def doctor(
    session: boto3.Session,
    deployment: Deployment,
    cluster_id: str | None,
    event: dict[str, Any] | None,
    options: Any,
) -> tuple[int, dict[str, Any]]:
    """Every link of the cluster's access chain, read through the operators' read-only roles."""
    from atc_xaccount_cli.doctor import doctor as run

    return run(deployment.step_context(session, f"doctor-{uuid.uuid4().hex[:8]}"), cluster_id, event, options)


def bootstrap_overrides(reader: boto3.Session, deployment: Deployment, account: str, partition: str) -> dict[str, str]:
    """The name parameters the account's automation role was deployed with, where they are not
    the bootstrap template's defaults (the world's `bootstrap` key); {} when its policies are unreadable."""
    from atc_xaccount_cli.local import authz
    from atc_xaccount_cli.local.template import load_yaml

    iam = reader.client("iam")
    role = deployment.automation_role_name
    try:
        policies = {
            name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        }
    except ClientError:
        return {}  # an operator role older than ReadAutomationRolePolicies; --direct can
    root = project_root()
    found = authz.deployed_names(root, policies, account=account, partition=partition)
    defaults = load_yaml(root / authz.BOOTSTRAP_TEMPLATE)["Parameters"]
    return {k: v for k, v in sorted(found.items()) if v != defaults[k].get("Default")}


def rotate_external_id(
    session: boto3.Session,
    deployment: Deployment,
    cluster_id: str,
    *,
    finish: bool,
    on_state: OnState = None,
    on_progress: OnProgress = None,
) -> tuple[int, dict[str, Any]]:
    """Start the rotation workflow's phase for the cluster and follow it (operators write nothing).

    After a successful start the pending external ID is read from the cluster's secret (as
    `show` reads the current one, with the operator's own permission) for the access key.
    """
    ctx = deployment.step_context(session, f"rotate-{uuid.uuid4().hex[:8]}")
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, cluster_id)
    if entry is None:
        return Exit.FAILED, {"clusterId": cluster_id, "registered": False}
    phase = "finish" if finish else "start"
    detail = {
        "clusterId": cluster_id,
        "clusterManagerAccountId": entry["clusterManagerAccountId"],
        "s3AccountId": entry["s3AccountId"],
        "phase": phase,
    }
    name = f"rotate-{_NAME_UNSAFE.sub('-', cluster_id)[:40]}-{phase}-{uuid.uuid4().hex[:12]}"
    code, execution = start_and_follow(
        session, deployment, "rotate", detail, name, wait=True, on_state=on_state, on_progress=on_progress
    )
    rotation = ((execution.get("output") or {}).get("rotation")) or {}
    body: dict[str, Any] = {
        "clusterId": cluster_id,
        "phase": phase,
        "execution": execution["execution"],
        "status": execution["status"],
        **{k: execution[k] for k in ("error", "cause") if execution.get(k)},
        **{k: v for k, v in rotation.items() if k not in ("clusterId", "phase", "next")},
    }
    key = (execution.get("output") or {}).get("accessKey") or {}
    if key.get("managed"):
        # Zero-touch (the Node API): the workflow moved the key and finished; nobody needs the ID.
        body["accessKey"] = {k: key[k] for k in ("id", "state", "action") if k in key}
    if code == Exit.OK and phase == "start" and rotation.get("phase") == "start":
        secret = external_ids.secret_name(ctx.secret_prefix, cluster_id)
        try:
            pending = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), secret, rotate.PENDING)
            body["newExternalId"] = pending[1] if pending else None
        except AtcXaccountError as exc:
            body["newExternalId"], body["note"] = None, f"cannot read {secret}: {exc}"
        body["next"] = "update the access key in Cluster Manager with newExternalId, then rotate-external-id --finish"
    return code, body
