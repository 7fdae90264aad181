"""External ID rotation, a workflow (`statemachine/rotate.asl.json`) with Secrets Manager's gates.

The rotation protocol of Secrets Manager, for an ID two accounts share:

- `start` (createSecret + setSecret): a new ID as the secret's AWSPENDING version, granted
  beside the current one, so both open the role while the operator updates the access key
  in Cluster Manager. It runs under the locks the workflow took before (nothing is written
  unlocked), is idempotent (a pending ID is reused) and leaves no pending ID when it fails.
- `finish` (testSecret + finishSecret): proves with the trust evaluator that the pending ID
  is admitted before it withdraws the current one — which stays when another cluster still
  uses it — then makes the pending ID current and records its fingerprint.

Each phase is one step, so a state between them (e.g. updating the access key through the
Node API, then browsing through it) can be added without touching either.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import external_ids, iam_ops, locks, registry
from atc_xaccount import users as _users
from atc_xaccount.aws_errors import aws_call
from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import (
    AtcXaccountError,
    ExternalIdSecretMismatch,
    PrerequisiteMissing,
    UndoIncomplete,
    VerificationFailed,
)
from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.extid import generate_external_id
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.checks import check_trust_quota, guard_trust, owned_statements, trust_quota, trust_resource
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import fenced, noted, trust_hash, trust_key
from atc_xaccount.steps.verify import check
from atc_xaccount.trust import merge_trust_grant, remove_trust_grant

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
AUTOMATION_ACCOUNT = "automation"


def start(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Grant a new (pending) ID beside the current one; the result never holds an ID."""
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    current = _registered_current(request, ctx, secrets, name)
    pending = external_ids.read_version(secrets, name, PENDING)
    created = None
    if pending is None:
        with aws_call("secretsmanager:PutSecretValue", AUTOMATION_ACCOUNT):
            put = secrets.put_secret_value(SecretId=name, SecretString=generate_external_id(), VersionStages=[PENDING])
        created = put["VersionId"]
        pending = external_ids.read_version(secrets, name, PENDING)
        if pending is None:
            raise PrerequisiteMissing("pending external ID", name, AUTOMATION_ACCOUNT)
    try:
        trust = _grant_pending(request, ctx, current[1], pending[1])
    except AtcXaccountError:
        if created is not None:  # leave no pending ID behind: a later start begins afresh
            _withdraw_pending(secrets, name, created)
        raise
    return {
        "clusterId": request.cluster_id,
        "phase": "start",
        "secretName": name,
        "pendingVersionId": pending[0],
        "pendingCreated": created is not None,
        "trust": trust["action"],
        "next": "update the access key in Cluster Manager with the pending external ID, then finish the rotation",
    }


def finish(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Prove the pending ID opens the role, withdraw the current one, make the pending current."""
    secrets = ctx.sessions.local_client("secretsmanager")
    dynamodb = ctx.sessions.local_client("dynamodb")
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    current = _registered_current(request, ctx, secrets, name)
    pending = external_ids.read_version(secrets, name, PENDING)
    if pending is None:
        raise PrerequisiteMissing("pending external ID (start the rotation first)", name, AUTOMATION_ACCOUNT)
    s3 = request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", s3)
    before = _trust(ctx, iam, request)
    admitted = evaluate_trust(before, targets.node_role_arn, pending[1])
    if not admitted.allowed:
        # testSecret: nothing is withdrawn unless the new ID is known to work.
        raise VerificationFailed(
            s3, [check("trust admits the node role with the pending external ID", False, admitted.reason)]
        )
    users = sorted(
        other["clusterId"]
        for other in _users.others(dynamodb, ctx.registry_table, request.cluster_manager_account_id, request.cluster_id)
        if other.get("nodeRoleArn") == targets.node_role_arn
        and other.get("accessRoleArn") == targets.access_role_arn
        and ctx.fingerprints.matches(other.get("externalIdFingerprint"), current[1])
    )
    after = before
    if not users:
        with owned_statements(s3, trust_resource(request.access_role_name)):
            after, _ = remove_trust_grant(before, targets.node_role_arn, current[1])
        guard_trust(before, after, targets.node_role_arn, set(), s3, request.access_role_name)
    trust = _write_trust(request, ctx, iam, before, after)
    with aws_call("secretsmanager:UpdateSecretVersionStage", AUTOMATION_ACCOUNT):
        secrets.update_secret_version_stage(
            SecretId=name, VersionStage=CURRENT, MoveToVersionId=pending[0], RemoveFromVersionId=current[0]
        )
        secrets.update_secret_version_stage(SecretId=name, VersionStage=PENDING, RemoveFromVersionId=pending[0])
    _record_rotated(request, ctx, dynamodb, ctx.fingerprints.of(pending[1]))
    return {
        "clusterId": request.cluster_id,
        "phase": "finish",
        "secretName": name,
        "trust": trust["action"],
        "rotated": True,
        **({"previousKeptFor": users} if users else {}),
    }


def _registered_current(request: ClusterRequest, ctx: StepContext, secrets: Any, name: str) -> tuple[str, str]:
    """(version, ID) of the secret's current version, which must be the ID the registry recorded."""
    current = external_ids.read_version(secrets, name, CURRENT)
    if current is None:
        raise PrerequisiteMissing("secret", name, AUTOMATION_ACCOUNT)
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id) or {}
    recorded = entry.get("externalIdFingerprint")
    if recorded and not ctx.fingerprints.matches(recorded, current[1]):
        raise ExternalIdSecretMismatch(request.cluster_id, name, "its fingerprint differs from the registry's")
    return current


def _record_rotated(request: ClusterRequest, ctx: StepContext, dynamodb: Any, fingerprint: str) -> None:
    """The new fingerprint on the cluster's record and its users entry, in one transaction."""
    entry = registry.get(dynamodb, ctx.registry_table, request.cluster_id) or {"clusterId": request.cluster_id}
    item = registry.rotated_item(ctx.registry_table, entry, fingerprint, ctx.execution)
    kept = _users.add_item(
        ctx.registry_table,
        request.cluster_manager_account_id,
        request.cluster_id,
        _users.user_entry({**entry, "externalIdFingerprint": fingerprint}),
    )
    with aws_call("dynamodb:TransactWriteItems", AUTOMATION_ACCOUNT):
        dynamodb.transact_write_items(TransactItems=[item, kept])


def _trust(ctx: StepContext, iam: Any, request: ClusterRequest) -> dict[str, Any]:
    """The role's trust policy, read as its last writer left it (`locking.fenced`)."""
    role = fenced(
        ctx,
        trust_key(request),
        lambda: iam_ops.get_role(iam, request.s3_account_id, request.access_role_name),
        trust_hash,
    )
    if role is None:
        raise PrerequisiteMissing("role", request.access_role_name, request.s3_account_id)
    return dict(role["AssumeRolePolicyDocument"])


def _grant_pending(request: ClusterRequest, ctx: StepContext, current: str, pending: str) -> dict[str, Any]:
    """setSecret: the pending ID joins the grant (the current one stays); proven before returning."""
    s3 = request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", s3)
    before = _trust(ctx, iam, request)
    with owned_statements(s3, trust_resource(request.access_role_name)):
        after, changed = merge_trust_grant(before, targets.node_role_arn, pending)
    if changed:
        guard_trust(
            before, after, targets.node_role_arn, {(targets.node_role_arn, pending)}, s3, request.access_role_name
        )
        check_trust_quota(after, trust_quota(iam, s3, non_whitespace_size(after)), request.access_role_name, s3)
    for external_id, what in ((pending, "pending"), (current, "current")):
        decision = evaluate_trust(after, targets.node_role_arn, external_id)
        if not decision.allowed:
            raise VerificationFailed(
                s3, [check(f"trust admits the node role with the {what} external ID", False, decision.reason)]
            )
    return _write_trust(request, ctx, iam, before, after)


def _write_trust(
    request: ClusterRequest, ctx: StepContext, iam: Any, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """Write the trust policy under the workflow's lock and note what it now is."""
    record = iam_ops.write_trust_policy(
        iam,
        request.s3_account_id,
        role_name=request.access_role_name,
        before=before,
        after=after,
        fingerprints=ctx.fingerprints,
    )
    if record.get("action") not in (None, "unchanged"):
        noted(ctx, trust_key(request), locks.document_hash(after))
    return record


def _withdraw_pending(secrets: Any, name: str, version: str) -> None:
    """Take AWSPENDING off the version this start created (the value is then never granted)."""
    try:
        with aws_call("secretsmanager:UpdateSecretVersionStage", AUTOMATION_ACCOUNT):
            secrets.update_secret_version_stage(SecretId=name, VersionStage=PENDING, RemoveFromVersionId=version)
    except AtcXaccountError as exc:
        raise UndoIncomplete(
            f"the pending external ID of {name} could not be withdrawn: {exc}",
            [{"change": "pendingExternalId", "what": f"{name} keeps an AWSPENDING version", "secretName": name}],
        ) from exc
