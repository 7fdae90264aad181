"""Undo exactly what a failed onboarding changed, and only where nobody changed it since.

Each write step left a change record (before/after). Compensation walks them in reverse
and restores `before` only when the resource still equals this execution's `after`;
anything else is reported as skipped, never overwritten.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import external_ids, iam_ops
from atc_xaccount.documents import same_document
from atc_xaccount.errors import AtcXaccountError
from atc_xaccount.model import ClusterRequest
from atc_xaccount.redact import redact_external_ids, unredact
from atc_xaccount.steps.context import StepContext, Targets


def compensate(
    request: ClusterRequest,
    ctx: StepContext,
    changes: dict[str, Any],
    external_id_record: dict[str, Any] | None,
    execution: str | None,
    error: str | None,
    preflight: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reverse trust, attachment, policy, secret — in that order.

    The registry is left alone: a cluster registered before keeps its earlier access.
    `changes` holds the records of the steps that finished (the cluster manager account's
    under `clusterManager`); a secret the trust step created before failing is known from
    preflight's plan (no secret existed) and deleted too.
    """
    flat = {**(changes.get("clusterManager") or {}), **{k: v for k, v in changes.items() if k != "clusterManager"}}
    external_id_record = external_id_record or (flat.get("trust") or {}).get("externalId")
    undone: list[dict[str, Any]] = []
    for name, undo in (
        ("trust", _undo_trust),
        ("attach", _undo_attach),
        ("assumePolicy", _undo_policy),
    ):
        change = flat.get(name)
        if change and change.get("applied") and change.get("action") not in (None, "unchanged"):
            undone.append({"change": name, **_attempt(undo, request, ctx, change)})
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    plan = (preflight or {}).get("plan") or {}
    if external_id_record and external_id_record.get("action") == "created":
        result = external_ids.delete_external_id(secrets, external_id_record["secretName"])
        undone.append({"change": "externalId", "result": result["action"]})
    elif external_id_record and external_id_record.get("action") == "updated":
        restored = external_ids.restore_previous(secrets, external_id_record["secretName"], external_id_record)
        undone.append({"change": "externalId", "result": restored})
    elif external_id_record is None and "trust" not in flat and plan.get("externalId", {}).get("stored") is False:
        # The trust step stores the ID right before its write; it failed, so any secret is this execution's.
        result = external_ids.delete_external_id(secrets, name)
        undone.append({"change": "externalId", "result": result["action"]})
    return {"undone": undone, "execution": execution, "error": error}


def undo_policy_change(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> dict[str, Any]:
    """Undo one assume-policy write (a step that failed after it, inside the same invocation)."""
    return _attempt(_undo_policy, request, ctx, change)


def _attempt(undo: Any, request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> dict[str, Any]:
    """One undo; a failure is reported and the others still run."""
    try:
        return {"result": undo(request, ctx, change)}
    except AtcXaccountError as exc:
        return {"result": "failed", "error": exc.to_dict()}


def _undo_trust(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    s3 = request.s3_account_id
    iam = ctx.sessions.client("iam", s3)
    role = iam_ops.get_role(iam, s3, request.access_role_name)
    if role is None:
        return "skipped: the role no longer exists"
    current = role["AssumeRolePolicyDocument"]
    if not same_document(redact_external_ids(current), change["after"]):
        return "skipped: the trust policy changed since this execution wrote it"
    withdrawn: list[str] = []
    if change.get("externalIdWithdrawn"):
        name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
        previous = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), name, "AWSPREVIOUS")
        withdrawn = [previous[1]] if previous else []
    try:
        before = unredact(change["before"], current, withdrawn)
    except KeyError:
        return "skipped: an external ID of the earlier policy is no longer known"
    iam_ops.write_trust_policy(iam, s3, role_name=request.access_role_name, before=current, after=before)
    return "restored"


def _undo_attach(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    cm = request.cluster_manager_account_id
    record = iam_ops.ensure_detached(
        ctx.sessions.client("iam", cm), cm, role_name=change["roleName"], policy_arn=change["policyArn"]
    )
    return "detached" if record["action"] == "detached" else "skipped: not attached any more"


def _undo_policy(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    cm = request.cluster_manager_account_id
    iam = ctx.sessions.client("iam", cm)
    arn = Targets.of(request, ctx.partition).assume_policy_arn
    current = iam_ops.get_policy_state(iam, cm, arn)
    if current is None:
        return "skipped: the policy no longer exists"
    if current.default_version != change.get("afterVersion") or not same_document(current.document, change["after"]):
        return "skipped: the policy changed since this execution wrote it"
    if change["action"] == "created":
        if current.attachment_count:
            return "skipped: the policy is attached to another principal now"
        iam_ops.delete_managed_policy(iam, cm, arn)
        return "deleted"
    iam_ops.restore_policy_version(
        iam,
        cm,
        arn=arn,
        default_version=change["beforeVersion"],
        drop_version=change["afterVersion"],
        retired=change.get("retiredVersion"),
    )
    return "restored"
