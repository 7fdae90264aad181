"""The operator commands: register, deregister, status, show, plan, audit, snapshot, rotate.

Each returns (exit code, JSON-able result); `--json` prints the result, otherwise a
short human report. Operators read, workflows write (DESIGN 8): onboarding, offboarding,
the audit and rotation run in Step Functions; plan, show, snapshot and doctor run the
layer's own code with the operator's credentials, reading target accounts through the
read-only operator role (bootstrap OperatorRoleName), never the automation role.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from atc_xaccount import external_ids, registry
from atc_xaccount.errors import AtcXaccountError
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps import rotate
from atc_xaccount.steps.plan import plan
from atc_xaccount.steps.validate import DEREGISTERED, REGISTERED, validate
from atc_xaccount_cli.aws.deployment import Deployment
from atc_xaccount_cli.executions import ExecutionResult, describe, follow_execution

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def execution_name(kind: str, event: dict[str, Any]) -> str:
    """Derived from the event: a duplicate delivery gets the same name, so it shows as one."""
    detail = event.get("detail", event)
    cluster = _NAME_UNSAFE.sub("-", str(detail.get("clusterId", "unknown")))[:40]
    digest = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()[:12]
    return f"{kind}-{cluster}-{digest}"


def execution_json(result: ExecutionResult) -> dict[str, Any]:
    from atc_xaccount_cli.local.run import cause_message

    return {
        "execution": result.name,
        "executionArn": result.arn,
        "status": result.status,
        "error": result.error,
        "cause": cause_message(result.cause),
        "output": result.output,
        "stateTransitions": result.transitions,
        "states": [{"name": s.name, "ms": round(s.millis or 0, 1), "failed": s.failed} for s in result.states],
    }


def start_and_follow(
    session: boto3.Session,
    machine_arn: str,
    event: dict[str, Any],
    name: str,
    *,
    wait: bool,
    on_state: Any,
) -> tuple[int, dict[str, Any]]:
    sfn = session.client("stepfunctions")
    duplicate = False
    try:
        arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(event))["executionArn"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        duplicate = True
        arn = machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    if not wait:
        return EXIT_OK, {"executionArn": arn, "duplicate": duplicate, "status": "RUNNING"}
    result = follow_execution(sfn, arn, on_state=on_state, poll=0.5)
    body = {**execution_json(result), "duplicate": duplicate}
    return (EXIT_OK if result.status == "SUCCEEDED" else EXIT_FAILED), body


def read_event(path: Path) -> dict[str, Any]:
    from atc_xaccount_cli.local.run import read_event as read

    return read(path)


def register(
    session: boto3.Session,
    deployment: Deployment,
    event: dict[str, Any],
    *,
    kind: str,
    wait: bool,
    via: str,
    source: str,
    on_state: Any,
) -> tuple[int, dict[str, Any]]:
    """Start the onboarding (or offboarding) for one event and follow it to its end."""
    detail_type = REGISTERED if kind == "onboard" else DEREGISTERED
    if via == "events":
        detail = event.get("detail", event)
        entry = {
            "Source": event.get("source", source),
            "DetailType": event.get("detail-type", detail_type),
            "Detail": json.dumps(detail),
            "EventBusName": deployment.event_bus,
        }
        sent = session.client("events").put_events(Entries=[entry])
        failed = sent.get("FailedEntryCount", 0)
        return (EXIT_FAILED if failed else EXIT_OK), {"via": "events", "entries": sent.get("Entries", [])}
    label = "register" if kind == "onboard" else "deregister"
    # A manual execution takes the detail alone (DESIGN 3.1); the name keeps the whole event.
    detail = event.get("detail", event)
    return start_and_follow(
        session, deployment.machine(kind), detail, execution_name(label, event), wait=wait, on_state=on_state
    )


def register_bulk(
    session: boto3.Session, deployment: Deployment, path: Path, *, wait: bool, on_state: Any
) -> tuple[int, dict[str, Any]]:
    """Upload a registrations file and run the bulk workflow over it."""
    from atc_xaccount_cli.local.run import UsageError

    if not deployment.bulk_bucket:
        raise UsageError("the deployment has no bulk bucket (BulkBucketName output); is it up to date?")
    try:
        body = path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"registrations file {path}: no such file") from exc
    key = f"uploads/{uuid.uuid4().hex[:8]}-{path.name}"
    session.client("s3").put_object(Bucket=deployment.bulk_bucket, Key=key, Body=body)
    code, result = start_and_follow(
        session,
        deployment.machine("bulk"),
        {"bucket": deployment.bulk_bucket, "key": key},
        f"bulk-{uuid.uuid4().hex[:12]}",
        wait=wait,
        on_state=on_state,
    )
    report = (result.get("output") or {}).get("report") or {}
    return code, {**result, "report": report}


def status(session: boto3.Session, deployment: Deployment, execution: str) -> tuple[int, dict[str, Any]]:
    sfn = session.client("stepfunctions")
    candidates = (
        [execution]
        if execution.startswith("arn:")
        else [
            arn.replace(":stateMachine:", ":execution:") + f":{execution}" for arn in deployment.state_machines.values()
        ]
    )
    for arn in candidates:
        try:
            result = describe(sfn, arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "ResourceNotFound"}:
                continue
            raise
        code = EXIT_OK if result.status in {"SUCCEEDED", "RUNNING"} else EXIT_FAILED
        return code, execution_json(result)
    return EXIT_USAGE, {"error": f"no execution {execution} in any atc-xaccount state machine"}


def show(session: boto3.Session, deployment: Deployment, cluster_id: str) -> tuple[int, dict[str, Any]]:
    """The cluster's registration and its external ID (readable only with the secret's permission)."""
    ctx = deployment.step_context(session, f"show-{uuid.uuid4().hex[:8]}")
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, cluster_id)
    if entry is None:
        return EXIT_FAILED, {"clusterId": cluster_id, "registered": False}
    name = external_ids.secret_name(ctx.secret_prefix, cluster_id)
    try:
        stored = external_ids.read_external_id(ctx.sessions.local_client("secretsmanager"), name)
        external_id: str | None = stored[1] if stored else None
        note = None if stored else "no secret: the cluster is not onboarded"
    except AtcXaccountError as exc:
        external_id, note = None, f"cannot read {name}: {exc}"
    return EXIT_OK, {
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
    ctx = deployment.step_context(session, f"plan-{uuid.uuid4().hex[:8]}", dry_run=True)
    request = ClusterRequest.from_dict(validate(event, ctx.defaults)["request"])
    # The trust change record is redacted already (iam_ops.write_trust_policy, dry run).
    return EXIT_OK, plan(request, ctx)


def audit(session: boto3.Session, deployment: Deployment, *, on_state: Any) -> tuple[int, dict[str, Any]]:
    code, body = start_and_follow(
        session, deployment.machine("audit"), {}, f"audit-{uuid.uuid4().hex[:12]}", wait=True, on_state=on_state
    )
    clusters = (body.get("output") or {}).get("clusters") or []
    body["drifted"] = [c for c in clusters if c.get("drift")]
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
    from botocore.exceptions import ClientError

    from atc_xaccount_cli.local import authz
    from atc_xaccount_cli.local.template import load_yaml
    from atc_xaccount_cli.main import project_root

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
    session: boto3.Session, deployment: Deployment, cluster_id: str, *, finish: bool, on_state: Any = None
) -> tuple[int, dict[str, Any]]:
    """Start the rotation workflow's phase for the cluster and follow it (operators write nothing).

    After a successful start the pending external ID is read from the cluster's secret (as
    `show` reads the current one, with the operator's own permission) for the access key.
    """
    ctx = deployment.step_context(session, f"rotate-{uuid.uuid4().hex[:8]}")
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, cluster_id)
    if entry is None:
        return EXIT_FAILED, {"clusterId": cluster_id, "registered": False}
    phase = "finish" if finish else "start"
    detail = {
        "clusterId": cluster_id,
        "clusterManagerAccountId": entry["clusterManagerAccountId"],
        "s3AccountId": entry["s3AccountId"],
        "phase": phase,
    }
    name = f"rotate-{_NAME_UNSAFE.sub('-', cluster_id)[:40]}-{phase}-{uuid.uuid4().hex[:12]}"
    code, body = start_and_follow(session, deployment.machine("rotate"), detail, name, wait=True, on_state=on_state)
    if code == EXIT_OK and phase == "start":
        secret = external_ids.secret_name(ctx.secret_prefix, cluster_id)
        try:
            pending = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), secret, rotate.PENDING)
            body["newExternalId"] = pending[1] if pending else None
        except AtcXaccountError as exc:
            body["newExternalId"], body["note"] = None, f"cannot read {secret}: {exc}"
        body["next"] = "update the access key in Cluster Manager with newExternalId, then rotate-external-id --finish"
    return code, body


def print_result(out: TextIO, command: str, body: dict[str, Any]) -> None:
    """A short human summary; `--json` prints `body` itself."""
    if command == "doctor" and "links" in body:
        from atc_xaccount_cli.doctor import print_doctor

        print_doctor(out, body)
        return
    if command == "doctor":
        out.write(f"doctor could not read the chain: {body.get('error')}: {body.get('message')}\n")
        return
    if "status" in body and "execution" in body:
        out.write(
            f"{body['status']}  execution {body['execution']}"
            + (" (duplicate)" if body.get("duplicate") else "")
            + "\n"
        )
        if body.get("error"):
            out.write(f"  error  {body['error']}\n  cause  {body['cause']}\n")
    for cluster in body.get("drifted", []):
        kinds = ", ".join(d["kind"] for d in cluster["drift"])
        out.write(f"  drift  {cluster['clusterId']}: {kinds}\n")
    if command == "show" and body.get("registered"):
        out.write(f"Cluster {body['clusterId']} ({body['state']})\n  Role ARN     {body['roleArn']}\n")
        out.write(f"  External ID  {body['externalId'] or body['note']}\n")
    elif command == "show":
        out.write(f"Cluster {body['clusterId']} is not registered\n")
    if command == "plan":
        for name, change in body["changes"].items():
            out.write(f"  {name:<13} {change.get('action')}\n")
        out.write("  (nothing to change)\n" if body["upToDate"] else "")
    for row in (body.get("report") or {}).get("problems", []):
        out.write(f"  line {row['line']:>4}  {row['status']:<9} {row.get('clusterId') or ''}  {row['cause']}\n")
    if (body.get("report") or {}).get("counts"):
        out.write(f"  {body['report']['counts']}; report {body['report'].get('report')}\n")
    if command == "rotate-external-id":
        for key, value in body.items():
            out.write(f"  {key}: {value}\n")
