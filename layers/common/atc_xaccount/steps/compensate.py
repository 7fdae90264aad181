"""Undo exactly what a failed onboarding changed, and only where nobody changed it since.

Each write step left a change record (before/after). Compensation walks them in reverse
and restores `before` only when the resource still equals this execution's `after`;
anything else is reported as skipped, never overwritten.

Compensation is idempotent (a resource already back at `before` counts as restored), so
the state machine retries it whole. Throttling is botocore's and the state machine's to
retry (one layer, issue 16 item 6); inside the Lambda only IAM's eventual consistency is
retried, and only while time is left. An undo started with less than UNDO_RESERVE_SECONDS
of the Lambda's time left is not started: it is reported as left, never cut off half-way
by Lambda's timeout (which would leave nothing recording it). What compensation cannot
undo is recorded in the registry (`leftBehind`, which the audit reports) and raised as
`CompensationIncomplete`, whose message names each change left; a later attempt that
finishes clears what an earlier one recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from atc_xaccount import external_ids, iam_ops, locks, registry, staged_ids
from atc_xaccount.aws_errors import seconds_left
from atc_xaccount.documents import same_document
from atc_xaccount.errors import (
    AtcXaccountError,
    CompensationIncomplete,
    UndoIncomplete,
    left_from_cause,
)
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import (
    fenced,
    fenced_policy_state,
    noted,
    policy_key,
    trust_hash,
    trust_key,
)

Undo = Callable[[ClusterRequest, StepContext, dict[str, Any]], str]

#: An undo is a handful of IAM calls of well under a second each; botocore's standard mode
#: may back off up to 15 s on a throttled one. An undo is not started with less time left.
UNDO_RESERVE_SECONDS = 20.0


def compensate(
    request: ClusterRequest,
    ctx: StepContext,
    changes: dict[str, Any],
    external_id_record: dict[str, Any] | None,
    execution: str | None,
    error: str | None,
    preflight: dict[str, Any] | None = None,
    cause: str | None = None,
    attempt: int = 0,
) -> dict[str, Any]:
    """Reverse trust, attachment, policy, a retired policy version, secret — in that order.

    The registry is left alone: a cluster registered before keeps its earlier access.
    `changes` holds the records of the steps that finished (the cluster manager account's
    under `clusterManager`); `cause` is the failed step's error, whose `left` records (an
    `UndoIncomplete`: a write that step could not undo itself) are undone too. A secret the
    trust step created before failing is known from preflight's plan and deleted too.
    `attempt` is the state machine's retry count: a retry that finishes clears what an
    earlier attempt recorded as left behind.
    """
    flat = {**(changes.get("clusterManager") or {}), **{k: v for k, v in changes.items() if k != "clusterManager"}}
    for item in left_from_cause(cause):
        flat.setdefault(str(item.get("change")), item)
    held: list[str] = []
    if ((preflight or {}).get("plan") or {}).get("grouped"):
        from atc_xaccount import queue
        from atc_xaccount.steps import group_undo

        keys = {"policy": policy_key(request), "trust": trust_key(request)}
        dynamodb = ctx.sessions.local_client("dynamodb")
        if not flat and not queue.held_by(dynamodb, ctx.locks_table, keys, request.cluster_id, ctx.execution):
            # Failed before any write step, with nothing queued for it (e.g. a bulk row that
            # phase 1 did not reserve, refused by its Preflight): nothing a commit could write.
            return _compensate(request, ctx, flat, external_id_record, execution, error, preflight, attempt)
        held = group_undo.locked_for_undo(request, ctx)
        try:
            flat = group_undo.adopt_served(request, ctx, flat)
            return _compensate(request, ctx, flat, external_id_record, execution, error, preflight, attempt)
        finally:
            group_undo.release_after_undo(ctx, held)
    return _compensate(request, ctx, flat, external_id_record, execution, error, preflight, attempt)


def _compensate(
    request: ClusterRequest,
    ctx: StepContext,
    flat: dict[str, Any],
    external_id_record: dict[str, Any] | None,
    execution: str | None,
    error: str | None,
    preflight: dict[str, Any] | None,
    attempt: int,
) -> dict[str, Any]:
    external_id_record = external_id_record or (flat.get("trust") or {}).get("externalId")
    undone: list[dict[str, Any]] = []
    for name, undo in UNDOES:
        change = flat.get(name)
        if change and change.get("applied", True) and change.get("action") not in (None, "unchanged"):
            if name == "assumePolicy":
                # IAM may still count the attachment this compensation just removed.
                detached = any(u["change"] == "attach" and u["result"] == "detached" for u in undone)
                undo = functools.partial(_undo_policy, just_detached=detached)
            if ((preflight or {}).get("plan") or {}).get("grouped") and name in GROUPED_UNDOES:
                undo = _grouped(name, undo)
            undone.append({"change": name, **_attempt(undo, request, ctx, change)})
    if any(entry["change"] == "trust" and entry["result"] == "failed" for entry in undone):
        # The grant left in place uses the ID: its secret is the only copy, so it stays too.
        kept = {"message": "kept: the trust grant left in place uses this external ID"}
        undone.append({"change": "externalId", "result": "failed", "error": kept})
    else:
        undone.extend(_undo_secret(request, ctx, flat, external_id_record, preflight))
    left = [_left(entry, flat.get(entry["change"]) or {}) for entry in undone if entry["result"] == "failed"]
    if left:
        _record_left_behind(request, ctx, execution, error, left)
        raise CompensationIncomplete(error, left)
    if attempt:
        _clear_left_behind(request, ctx, execution)
    return {"undone": undone, "execution": execution, "error": error}


def undo_policy_change_or_raise(
    request: ClusterRequest, ctx: StepContext, record: dict[str, Any], failure: Exception, what: str
) -> None:
    """Undo a step's own assume policy change after `failure`. A step is all or nothing: its
    record never reaches Compensate when it fails, so an undo that fails too (after its own
    retries) travels in the error instead (`UndoIncomplete`, naming `what` is left)."""
    undone = undo_policy_change(request, ctx, record)
    if undone["result"] == "failed":
        raise UndoIncomplete(
            f"{failure}; undoing the assume policy failed too: {undone['error'].get('message')}",
            [{"change": "assumePolicy", "what": what, **record}],
            account=request.cluster_manager_account_id,
        ) from failure


def undo_policy_change(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> dict[str, Any]:
    """Undo one assume-policy write (a step that failed after it, inside the same invocation)."""
    return _attempt(_undo_policy, request, ctx, change)


def _attempt(undo: Undo, request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> dict[str, Any]:
    """One undo, unless the Lambda has too little time left to finish it; a failure is reported
    and the others still run (the state machine retries the whole compensation)."""
    left = seconds_left()
    if left is not None and left < UNDO_RESERVE_SECONDS:
        why = f"not attempted: {left:.0f} s of the Lambda's time left, {UNDO_RESERVE_SECONDS:.0f} s needed"
        return {"result": "failed", "error": {"error": "CompensationOutOfTime", "message": why}}
    try:
        return {"result": undo(request, ctx, change)}
    except AtcXaccountError as exc:
        return {"result": "failed", "error": exc.to_dict()}


def _left(entry: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """What one failed undo left, in words and with what a human (or a retry) needs to finish it."""
    name = entry["change"]
    error = (entry.get("error") or {}).get("message", "")
    where: dict[str, Any] = {k: change[k] for k in ("account", "roleName", "policyArn") if k in change}
    descriptions: dict[str, str] = {
        "trust": f"the trust policy of {change.get('roleName')} in {change.get('account')} "
        "keeps this execution's grant",
        "attach": f"{change.get('policyArn')} stays attached to {change.get('roleName')}",
        "assumePolicy": f"{change.get('policyArn')} keeps this execution's {change.get('action')} change "
        f"(version {change.get('afterVersion')}, before: {change.get('beforeVersion')})",
        "retiredVersion": f"version {change.get('versionId')} of {change.get('policyArn')} was deleted and is not back",
        "externalId": "the cluster's external ID secret stays (the grant left in place uses it)",
    }
    what = descriptions.get(name, name)
    left: dict[str, Any] = {"change": name, "what": what, **where, "error": error}
    retired = change.get("retiredVersion") if name == "assumePolicy" else change if name == "retiredVersion" else None
    if retired:
        left["retiredVersion"] = {k: retired[k] for k in ("versionId", "document", "copies") if k in retired}
    return left


def _record_left_behind(
    request: ClusterRequest, ctx: StepContext, execution: str | None, error: str | None, left: list[dict[str, Any]]
) -> None:
    """Best effort: the registry keeps what was left, for the audit; the raised error says it anyway."""
    try:
        registry.record_left_behind(
            ctx.sessions.local_client("dynamodb"), ctx.registry_table, request, execution, error, left
        )
    except AtcXaccountError:
        return


def _clear_left_behind(request: ClusterRequest, ctx: StepContext, execution: str | None) -> None:
    """Best effort: a retried compensation finished, so nothing an earlier attempt recorded is left."""
    try:
        registry.clear_left_behind(
            ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id, execution
        )
    except AtcXaccountError:
        return


def _undo_secret(
    request: ClusterRequest,
    ctx: StepContext,
    flat: dict[str, Any],
    record: dict[str, Any] | None,
    preflight: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    plan = (preflight or {}).get("plan") or {}
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    secrets = ctx.sessions.local_client("secretsmanager")

    def delete(secret: str) -> Undo:
        return lambda *_: str(external_ids.delete_external_id(secrets, secret)["action"])

    if record and record.get("action") == "created":
        undo = delete(record["secretName"])
    elif record and record.get("action") == "updated":
        undo = lambda *_: external_ids.restore_previous(secrets, record["secretName"], record)  # noqa: E731
    elif record is None and "trust" not in flat and plan.get("externalId", {}).get("stored") is False:
        # The trust step stores the ID right before its write; it failed, so any secret is this execution's.
        undo = delete(name)
    elif record is None and request.requested_fingerprint and not request.requested_created:
        # The ID the event gave was staged (Validate) and never granted: take the label off.
        undo = lambda *_: staged_ids.discard(secrets, name)  # noqa: E731
    else:
        return []
    return [{"change": "externalId", **_attempt(undo, request, ctx, record or {})}]


def _undo_trust(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    s3 = request.s3_account_id
    iam = ctx.sessions.client("iam", s3)
    role = fenced(ctx, trust_key(request), lambda: iam_ops.get_role(iam, s3, request.access_role_name), trust_hash)
    if role is None:
        return "skipped: the role no longer exists"
    current = role["AssumeRolePolicyDocument"]
    fps = ctx.fingerprints
    if same_document(fps.redact(current), change["before"]) and not same_document(change["before"], change["after"]):
        return "restored"  # a retried compensation: the first attempt already wrote `before`
    if not same_document(fps.redact(current), change["after"]):
        return "skipped: the trust policy changed since this execution wrote it"
    withdrawn: list[str] = []
    if change.get("externalIdWithdrawn"):
        name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
        previous = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), name, "AWSPREVIOUS")
        withdrawn = [previous[1]] if previous else []
    try:
        before = fps.unredact(change["before"], current, withdrawn)
    except KeyError:
        return "skipped: an external ID of the earlier policy is no longer known"
    iam_ops.write_trust_policy(
        iam, s3, role_name=request.access_role_name, before=current, after=before, fingerprints=fps
    )
    noted(ctx, trust_key(request), locks.document_hash(before))
    return "restored"


def _undo_attach(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    cm = request.cluster_manager_account_id
    iam_ops.ensure_detached(
        ctx.sessions.client("iam", cm), cm, role_name=change["roleName"], policy_arn=change["policyArn"]
    )
    return "detached"  # not attached any more (a retried compensation's first attempt) counts as detached


def _undo_policy(
    request: ClusterRequest, ctx: StepContext, change: dict[str, Any], *, just_detached: bool = False
) -> str:
    """`just_detached`: this compensation detached the policy a moment ago, so IAM's
    AttachmentCount may still count that attachment (it is eventually consistent too)."""
    cm = request.cluster_manager_account_id
    iam = ctx.sessions.client("iam", cm)
    arn = Targets.of(request, ctx.partition).assume_policy_arn
    current = fenced_policy_state(ctx, request, iam, arn)
    if current is None:
        return "deleted" if change["action"] == "created" else "skipped: the policy no longer exists"
    ours = current.default_version == change.get("afterVersion") and same_document(current.document, change["after"])
    back = current.default_version == change.get("beforeVersion") and same_document(current.document, change["before"])
    if change["action"] == "created":
        if not ours:
            return "skipped: the policy changed since this execution wrote it"
        if current.attachment_count - (1 if just_detached else 0) > 0:
            return "skipped: the policy is attached to another principal now"
        iam_ops.delete_managed_policy(iam, cm, arn, just_detached=True)
        noted(ctx, policy_key(request), locks.ABSENT)
        return "deleted"
    if not (ours or back):
        return "skipped: the policy changed since this execution wrote it"
    retired = iam_ops.restore_policy_version(
        iam,
        cm,
        arn=arn,
        default_version=change["beforeVersion"],
        drop_version=change["afterVersion"],
        retired=change.get("retiredVersion"),
    )
    noted(ctx, policy_key(request), locks.policy_hash(change["beforeVersion"], change["before"]))
    if retired is not None and retired.startswith("skipped"):
        raise UndoIncomplete(f"the retired version of {arn} is not back: {retired}", [], account=cm)
    return "restored"


def _undo_retired(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    """A retired version the failed step could not put back (its `UndoIncomplete`)."""
    cm = change.get("account") or request.cluster_manager_account_id
    result = iam_ops.ensure_policy_version_document(
        ctx.sessions.client("iam", cm),
        cm,
        arn=change["policyArn"],
        document=change["document"],
        copies=int(change.get("copies", 1)),
    )
    if result.startswith("skipped"):
        raise UndoIncomplete(f"the retired version of {change['policyArn']} is not back: {result}", [], account=cm)
    return result


def _grouped(name: str, classic: Undo) -> Undo:
    """The undo of a change a group commit made for this cluster (removal, not restore);
    `classic` is the locked path's undo, for a write that was this cluster's alone."""
    from atc_xaccount.steps import group_undo

    after_commit = {
        "trust": group_undo.undo_trust_after_commit,
        "attach": group_undo.undo_attach_after_commit,
        "assumePolicy": group_undo.undo_policy_after_commit,
    }[name]
    return lambda request, ctx, change: after_commit(request, ctx, change, classic)


#: The changes a grouped onboarding's commits made (their locks are no longer held).
GROUPED_UNDOES = frozenset({"trust", "attach", "assumePolicy"})


UNDOES: tuple[tuple[str, Undo], ...] = (
    ("trust", _undo_trust),
    ("attach", _undo_attach),
    ("assumePolicy", _undo_policy),
    ("retiredVersion", _undo_retired),
)
