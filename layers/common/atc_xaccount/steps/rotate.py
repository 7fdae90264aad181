"""External ID rotation without downtime: new grant beside the old, then drop the old.

`start` stores a new ID as the secret's AWSPENDING version and adds it to the node role's
grant, so both IDs open the role while the operator updates the access key in Cluster
Manager; `finish` removes the old ID and promotes the new one to AWSCURRENT.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount import external_ids, iam_ops, locks, registry
from atc_xaccount.aws_errors import aws_call, is_not_found, translate
from atc_xaccount.errors import PrerequisiteMissing
from atc_xaccount.extid import generate_external_id
from atc_xaccount.model import ClusterRequest
from atc_xaccount.redact import fingerprint
from atc_xaccount.steps.checks import guard_trust, owned_statements, trust_resource
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.converge import merge_trust
from atc_xaccount.steps.locking import lock_keys
from atc_xaccount.trust import remove_trust_grant

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
AUTOMATION_ACCOUNT = "automation"


def registered_request(cluster_id: str, ctx: StepContext) -> tuple[ClusterRequest, dict[str, Any]]:
    """The cluster's request as registered; only a READY cluster can rotate."""
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, cluster_id)
    if entry is None or entry.get("state") != registry.READY:
        raise PrerequisiteMissing("registered cluster", cluster_id, "automation")
    # The registry keeps the request's own camelCase fields.
    request = ClusterRequest.from_dict({k: entry.get(k) for k in registry.REQUEST_FIELDS} | {"externalId": None})
    return request, entry


def _version(secrets: Any, name: str, stage: str) -> tuple[str, str] | None:
    """(version id, value) of the secret's version at `stage`, if any."""
    try:
        found = secrets.get_secret_value(SecretId=name, VersionStage=stage)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise translate(exc, "secretsmanager:GetSecretValue", AUTOMATION_ACCOUNT) from exc
    return found["VersionId"], found["SecretString"]


def start(cluster_id: str, ctx: StepContext, owner: str) -> dict[str, Any]:
    """Add a new external ID beside the current one; return it for the operator."""
    request, _ = registered_request(cluster_id, ctx)
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, cluster_id)
    pending = _version(secrets, name, PENDING)
    if pending is None:
        new_id = generate_external_id()
        with aws_call("secretsmanager:PutSecretValue", AUTOMATION_ACCOUNT):
            secrets.put_secret_value(SecretId=name, SecretString=new_id, VersionStages=[PENDING])
    else:
        new_id = pending[1]
    dynamodb = ctx.sessions.local_client("dynamodb")
    locks.acquire(dynamodb, ctx.locks_table, lock_keys(request), owner)
    try:
        trust = merge_trust(request, ctx, new_id)
    finally:
        locks.release(dynamodb, ctx.locks_table, lock_keys(request), owner)
    return {
        "clusterId": cluster_id,
        "roleArn": Targets.of(request, ctx.partition).access_role_arn,
        "newExternalId": new_id,
        "secretName": name,
        "trust": trust["action"],
        "next": "update the access key in Cluster Manager with the new external ID, then finish the rotation",
    }


def finish(cluster_id: str, ctx: StepContext, owner: str) -> dict[str, Any]:
    """Remove the old ID from the grant and make the new one current."""
    request, _ = registered_request(cluster_id, ctx)
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, cluster_id)
    pending, current = _version(secrets, name, PENDING), _version(secrets, name, CURRENT)
    if pending is None or current is None:
        raise PrerequisiteMissing("pending external ID (start the rotation first)", name, "automation")
    targets = Targets.of(request, ctx.partition)
    s3 = request.s3_account_id
    iam = ctx.sessions.client("iam", s3)
    dynamodb = ctx.sessions.local_client("dynamodb")
    locks.acquire(dynamodb, ctx.locks_table, lock_keys(request), owner)
    try:
        role = iam_ops.get_role(iam, s3, request.access_role_name)
        if role is None:
            raise PrerequisiteMissing("role", request.access_role_name, s3)
        before = role["AssumeRolePolicyDocument"]
        with owned_statements(s3, trust_resource(request.access_role_name)):
            after, _ = remove_trust_grant(before, targets.node_role_arn, current[1])
        guard_trust(before, after, targets.node_role_arn, set(), s3, request.access_role_name)
        trust = iam_ops.write_trust_policy(iam, s3, role_name=request.access_role_name, before=before, after=after)
    finally:
        locks.release(dynamodb, ctx.locks_table, lock_keys(request), owner)
    with aws_call("secretsmanager:UpdateSecretVersionStage", AUTOMATION_ACCOUNT):
        secrets.update_secret_version_stage(
            SecretId=name, VersionStage=CURRENT, MoveToVersionId=pending[0], RemoveFromVersionId=current[0]
        )
        secrets.update_secret_version_stage(SecretId=name, VersionStage=PENDING, RemoveFromVersionId=pending[0])
    entry = registry.get(dynamodb, ctx.registry_table, cluster_id) or {}
    registry.put(dynamodb, ctx.registry_table, {**entry, "externalIdFingerprint": fingerprint(pending[1])})
    return {"clusterId": cluster_id, "trust": trust["action"], "secretName": name, "rotated": True}
