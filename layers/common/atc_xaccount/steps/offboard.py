"""The offboarding steps (`statemachine/offboard.asl.json`): undo exactly one cluster.

What belongs to the cluster comes from the registry: its external ID (by secret and
fingerprint) in the node role's grant, and the access role ARN in the assume policy
unless another registered cluster of the same cluster manager account still needs it.
A cluster re-registered against other accounts (or names) is revoked in every placement
the registry kept for it (`registry.PLACEMENTS`), under the locks of all of them.
Everything this project does not own stays as it is.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import external_ids, iam_ops, locks, provenance, registry, users
from atc_xaccount.assume_policy import is_effectively_empty, remove_assume_policy_resource
from atc_xaccount.errors import OwnedStatementModified, PrerequisiteMissing, RegistrationMismatch
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.checks import guard_assume_policy, guard_trust, owned_statements, trust_resource
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import (
    fenced,
    fenced_policy_state,
    noted,
    policy_key,
    trust_hash,
    trust_key,
)
from atc_xaccount.trust import grant_external_ids, grant_problems, grant_sid, remove_trust_grant

NAME_FIELDS = ("nodeRoleName", "accessRoleName", "assumePolicyName", "accessPolicyName", "buckets", "nodeApi")


def load_registration(request: ClusterRequest, ctx: StepContext, *, require_ready: bool = False) -> dict[str, Any]:
    """The registered request (names as registered), or `nothingToDo` when none is active.

    `require_ready` (a rotation): only a cluster whose access exists (READY) qualifies.
    """
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id)
    if require_ready and (entry is None or entry.get("state") != registry.READY):
        state = entry.get("state") if entry else "not registered"
        raise PrerequisiteMissing(f"READY registration (it is {state})", request.cluster_id, "automation")
    if entry is None or entry.get("state") == registry.REVOKED:
        reason = "never registered" if entry is None else "already deregistered"
        return {"request": request.to_dict(), "nothingToDo": True, "reason": reason}
    for field, given in (
        ("clusterManagerAccountId", request.cluster_manager_account_id),
        ("s3AccountId", request.s3_account_id),
    ):
        if entry[field] != given:
            raise RegistrationMismatch(request.cluster_id, field, entry[field], given)
    registered = ClusterRequest.from_dict(
        {**request.to_dict(), **{k: entry[k] for k in NAME_FIELDS if k in entry}, "externalId": None}
    )
    former = [
        ClusterRequest.from_dict({**registered.to_dict(), **place}).to_dict()
        for place in registry.former_placements(entry)
    ]
    return {
        "request": registered.to_dict(),
        "nothingToDo": False,
        "registeredState": entry.get("state"),
        "formerPlacements": former,
    }


def _others(request: ClusterRequest, ctx: StepContext) -> list[dict[str, Any]]:
    """Other clusters whose access must survive this deregistration (read consistently: `users`)."""
    dynamodb = ctx.sessions.local_client("dynamodb")
    return users.others(dynamodb, ctx.registry_table, request.cluster_manager_account_id, request.cluster_id)


def revoke_trust(
    request: ClusterRequest, ctx: StepContext, execution: str | None = None, *, record_intent: bool = False
) -> dict[str, Any]:
    """Remove this cluster's external IDs from the node role's grant (the grant goes when empty).

    Its IDs are the one in its secret and any granted ID whose fingerprint the registry
    records as the cluster's (current or former): an ID whose secret was lost is still
    known by its fingerprint. An ID another registered cluster also uses stays.
    `record_intent` (the first revoke of an offboarding, under its locks) records the
    cluster as REVOKING before anything is revoked: a deregistration that fails midway is
    then finished by re-running it, never repaired back.
    """
    if record_intent and not ctx.dry_run:
        registry.mark_revoking(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id, execution)
    s3 = request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", s3)
    role = fenced(ctx, trust_key(request), lambda: iam_ops.get_role(iam, s3, request.access_role_name), trust_hash)
    if role is None:
        return {"action": "unchanged", "applied": not ctx.dry_run, "reason": "role not found"}
    stored = external_ids.read_external_id(
        ctx.sessions.local_client("secretsmanager"), external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    )
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id) or {}
    own = {entry.get("externalIdFingerprint"), *(entry.get("formerExternalIdFingerprints") or [])} - {None}
    shared = {
        other.get("externalIdFingerprint")
        for other in _others(request, ctx)
        if other.get("nodeRoleArn") == targets.node_role_arn and other.get("accessRoleArn") == targets.access_role_arn
    }
    before = role["AssumeRolePolicyDocument"]
    resource = trust_resource(request.access_role_name)
    problems = grant_problems(before, targets.node_role_arn)
    if problems:
        # Only IDs of a statement we wrote are ever removed; an edited one is a human's call.
        raise OwnedStatementModified(s3, resource, grant_sid(targets.node_role_arn), problems)
    granted = grant_external_ids(before, targets.node_role_arn)
    fps = ctx.fingerprints
    mine = {i for i in granted if any(fps.matches(f, i) for f in own)} | ({stored[1]} if stored else set())
    removing = sorted(i for i in mine if not any(fps.matches(f, i) for f in shared))
    after = before
    with owned_statements(s3, resource):
        for external_id in removing:
            after, _ = remove_trust_grant(after, targets.node_role_arn, external_id)
    guard_trust(before, after, targets.node_role_arn, set(), s3, request.access_role_name)
    record = iam_ops.write_trust_policy(
        iam,
        s3,
        role_name=request.access_role_name,
        before=before,
        after=after,
        fingerprints=fps,
        dry_run=ctx.dry_run,
    )
    if record.get("action") not in (None, "unchanged"):
        noted(ctx, trust_key(request), locks.document_hash(after))
    kept = len(mine) - len(removing)
    return {
        **record,
        "removed": len(removing),
        **({"reason": f"{kept} ID(s) shared with another cluster"} if kept else {}),
    }


def revoke_policy(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Remove the access role from the assume policy unless another cluster needs it.

    The policy's lock item says what it was before atc-xaccount (`provenance.provenance_of`):
    an access role it already allowed stays; an attachment it already had stays, one we
    made goes with the last cluster of that node role; the policy is deleted only when we
    created it and nothing is left in it. A policy from before provenance was kept is
    handled as before: detached and deleted when no statement is left.
    """
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    others = [o for o in _others(request, ctx) if o.get("assumePolicyArn") == targets.assume_policy_arn]
    needed_by = [o["clusterId"] for o in others if o.get("accessRoleArn") == targets.access_role_arn]
    if needed_by:
        return {"action": "unchanged", "applied": not ctx.dry_run, "reason": f"still needed by {needed_by}"}
    iam = ctx.sessions.client("iam", cm)
    current = fenced_policy_state(ctx, request, iam, targets.assume_policy_arn, with_versions=True)
    if current is None:
        return {"action": "unchanged", "applied": not ctx.dry_run, "reason": "policy not found"}
    dynamodb, key = ctx.sessions.local_client("dynamodb"), provenance.provenance_key(cm, request.assume_policy_name)
    known = provenance.read_provenance(dynamodb, ctx.registry_table, key)
    created = known.get(provenance.CREATED_BY_US)
    was_attached = known.get(provenance.attached_before(request.node_role_name))
    record, delete = _remove_resource(request, ctx, iam, current, known, created)
    node_users = [o["clusterId"] for o in others if o.get("nodeRoleArn") == targets.node_role_arn]
    detach = not node_users and (was_attached is False or (was_attached is None and delete))
    detached = None
    if detach:
        detached = iam_ops.ensure_detached(
            iam, cm, role_name=request.node_role_name, policy_arn=targets.assume_policy_arn, dry_run=ctx.dry_run
        )
        record = {**record, "detached": detached["action"] == "detached"}
    forget = [provenance.resource_before(targets.access_role_arn)]
    if not node_users:
        forget.append(provenance.attached_before(request.node_role_name))
    if delete:
        still_attached = current.attachment_count - (1 if detached and detached["action"] == "detached" else 0)
        if still_attached > 0:
            record = {**record, "reason": f"policy left in place: attached to {still_attached} other principal(s)"}
        else:
            deleted = iam_ops.delete_managed_policy(
                iam, cm, targets.assume_policy_arn, dry_run=ctx.dry_run, just_detached=bool(detached)
            )
            record = {**deleted, "detached": bool(detached and detached["action"] == "detached")}
            forget = sorted(known)
            if deleted.get("action") == "deleted":
                noted(ctx, policy_key(request), locks.ABSENT)
    if not ctx.dry_run and known:
        everything = set(forget) >= set(known)
        provenance.forget_provenance(
            dynamodb, ctx.registry_table, key, [a for a in forget if a in known], everything=everything
        )
    return record


def _remove_resource(
    request: ClusterRequest,
    ctx: StepContext,
    iam: Any,
    current: iam_ops.PolicyState,
    known: dict[str, bool],
    created: bool | None,
) -> tuple[dict[str, Any], bool]:
    """(the policy change, whether the policy should now be deleted)."""
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    unchanged = {"action": "unchanged", "applied": not ctx.dry_run}
    if known.get(provenance.resource_before(targets.access_role_arn)):
        return {**unchanged, "reason": "the policy allowed the access role before atc-xaccount"}, False
    with owned_statements(cm, f"policy {request.assume_policy_name}"):
        desired, changed = remove_assume_policy_resource(current.document, targets.access_role_arn)
    if not changed:
        return {**unchanged, "reason": "role not in the policy"}, False
    if is_effectively_empty(desired):
        if created is False:
            return {**unchanged, "reason": "the policy existed before atc-xaccount: left as it is"}, False
        return unchanged, True
    guard_assume_policy(current.document, desired, set(), cm, request.assume_policy_name)
    record = iam_ops.write_managed_policy(
        iam,
        cm,
        name=request.assume_policy_name,
        arn=targets.assume_policy_arn,
        current=current,
        desired=desired,
        dry_run=ctx.dry_run,
    )
    if record.get("action") not in (None, "unchanged"):
        noted(ctx, policy_key(request), locks.policy_hash(record.get("afterVersion"), record.get("after")))
    return record, False


def forget(request: ClusterRequest, ctx: StepContext, execution: str | None) -> dict[str, Any]:
    """Delete the cluster's external ID secret and mark it REVOKED in the registry."""
    secret = external_ids.delete_external_id(
        ctx.sessions.local_client("secretsmanager"),
        external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        dry_run=ctx.dry_run,
    )
    if not ctx.dry_run:
        dynamodb = ctx.sessions.local_client("dynamodb")
        users.remove(dynamodb, ctx.registry_table, request.cluster_manager_account_id, request.cluster_id)
        registry.set_state(
            ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id, registry.REVOKED, execution
        )
    return {"secret": secret["action"], "state": registry.REVOKED}
