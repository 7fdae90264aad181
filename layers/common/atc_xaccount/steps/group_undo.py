"""Undo what a group commit wrote for one cluster, and only that (docs/converge.md).

A commit's write holds other clusters' grants too, so its `before` is nobody's to restore.
A cluster's own change is what the commit added for it: its external ID in its node
role's grant, its access role in the assume policy, the policy's attachment to its node
role. Undoing it is removing exactly that, under the documents' locks (`locked_for_undo`:
the commits released theirs), unless another
cluster still needs it — the same removal an offboarding makes (`steps/offboard.py`), so
the merge/remove pair's property (remove after add restores the document) carries over.
The commit kept every cluster it served in the users item before its Record, so a
cluster still in flight counts as needing what it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from atc_xaccount import locks, users
from atc_xaccount.aws_errors import backoff_delays
from atc_xaccount.errors import ResourceLocked
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext
from atc_xaccount.steps.locking import policy_key, trust_key
from atc_xaccount.steps.offboard import revoke_policy, revoke_trust

#: The locked path's undo of one change record (steps/compensate.py passes its own).
Classic = Callable[[ClusterRequest, StepContext, dict[str, Any]], str]
#: Tries for a document's lock: commits hold it for one invocation only.
LOCK_ATTEMPTS = 12


def locked_for_undo(request: ClusterRequest, ctx: StepContext) -> list[str]:
    """Take both documents' locks for the compensation of a grouped onboarding (its commits
    released them); bounded tries, since commits hold a lock for one invocation only."""
    dynamodb, owner = ctx.sessions.local_client("dynamodb"), ctx.execution or ""
    keys = [policy_key(request), trust_key(request)]
    for delay in [*backoff_delays(LOCK_ATTEMPTS), None]:
        try:
            locks.acquire(dynamodb, ctx.locks_table, keys, owner)
            return keys
        except ResourceLocked:
            if delay is None:
                raise
            time.sleep(max(delay, 0.05))
    raise AssertionError("unreachable: the last attempt returns or raises")


def release_after_undo(ctx: StepContext, keys: list[str]) -> None:
    """Release them; each keeps the hash its undo noted (or the commit's, if nothing was undone)."""
    locks.release(ctx.sessions.local_client("dynamodb"), ctx.locks_table, keys, ctx.execution or "")


def undo_grouped_trust(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    """Remove this cluster's external ID from its node role's grant (kept if another cluster shares it)."""
    if not change.get("externalIdAdded"):
        return "unchanged: the grant was there before this execution"
    record = revoke_trust(request, ctx)
    return "removed" if record.get("removed") else f"kept: {record.get('reason', 'nothing of this cluster left')}"


def undo_grouped_attach(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    """The attachment goes with the assume policy's undo, which knows whether another cluster needs it."""
    if change.get("policyChanged"):
        return "with the assume policy"
    return undo_grouped_policy(request, ctx, change)


def undo_grouped_policy(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    """Remove this cluster's access role from the assume policy (and detach, delete) unless still needed."""
    record = revoke_policy(request, ctx)
    return str(record.get("reason") or record.get("action") or "unchanged")


def adopt_served(request: ClusterRequest, ctx: StepContext, flat: dict[str, Any]) -> dict[str, Any]:
    """A grouped onboarding failing before its write steps returned: withdraw its queued
    intents, and take as its own what a commit wrote for it meanwhile (so it is undone)."""
    from atc_xaccount import external_ids, queue

    dynamodb, owner = ctx.sessions.local_client("dynamodb"), ctx.execution or ""
    # A commit kept the cluster as a user; it is one only as the registry says (its undo
    # below must not count it as needing what it is giving back).
    users.settle(dynamodb, ctx.registry_table, request.cluster_manager_account_id, request.cluster_id)
    adopted = dict(flat)
    served = queue.withdraw(dynamodb, ctx.locks_table, policy_key(request), request.cluster_id, owner)
    if served and served.get("solo") and "assumePolicy" not in adopted:
        # The write was this cluster's alone (even if attaching then failed): the classic records.
        adopted["assumePolicy"], adopted["attach"] = served["record"], served["attachRecord"]
    elif served and "error" not in served and "assumePolicy" not in adopted:
        added = bool(served.get("resourceAdded"))
        adopted["assumePolicy"] = {"action": "versioned" if added else "unchanged", "grouped": True, "applied": True}
        adopted["attach"] = {
            "action": "attached" if served.get("attached") else "unchanged",
            "grouped": True,
            "applied": True,
            "policyChanged": added,
        }
    # A bulk's phase 1 stored the secret of the intent it reserved (steps/reserve.py): this
    # execution's to delete, whether or not a commit served the intent.
    pending, _ = queue.read(dynamodb, ctx.locks_table, trust_key(request))
    own = dict(pending).get(request.cluster_id) or {}
    reserved_secret = bool(own.get("execution") == owner and own.get("reservedBy") and own.get("secretCreated"))
    served = queue.withdraw(dynamodb, ctx.locks_table, trust_key(request), request.cluster_id, owner)
    if reserved_secret and not served and "trust" not in adopted:
        adopted["trust"] = {"action": "unchanged", "grouped": True, "applied": True, "externalIdAdded": False}
    if served and served.get("solo") and "trust" not in adopted:
        adopted["trust"] = dict(served["record"])
    elif served and "error" not in served and "trust" not in adopted:
        adopted["trust"] = {
            "action": "updated" if served.get("added") else "unchanged",
            "grouped": True,
            "applied": True,
            "externalIdAdded": bool(served.get("added")),
        }
    if "trust" in adopted and ((served and served.get("secretCreated")) or reserved_secret):
        name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
        adopted["trust"]["externalId"] = {"secretName": name, "action": "created", "applied": True}
    return adopted


# --- the undo of a grouped onboarding's change, whichever way its commit recorded it -----
#
# The commits released their locks, so another writer may have changed the document since.
# A record of a write that was this cluster's alone is restored exactly (the locked path's
# undo) when nothing changed since and nobody else uses what it added; otherwise what it
# added is removed, unless still needed.


def _shared(request: ClusterRequest, ctx: StepContext) -> bool:
    """Does another cluster of the account use this access role or node role (users, consistent)?"""
    from atc_xaccount.steps.context import Targets

    targets = Targets.of(request, ctx.partition)
    dynamodb = ctx.sessions.local_client("dynamodb")
    others = users.others(dynamodb, ctx.registry_table, request.cluster_manager_account_id, request.cluster_id)
    return any(
        o.get("assumePolicyArn") == targets.assume_policy_arn
        and (o.get("accessRoleArn") == targets.access_role_arn or o.get("nodeRoleArn") == targets.node_role_arn)
        for o in others
    )


def undo_trust_after_commit(request: ClusterRequest, ctx: StepContext, change: dict[str, Any], classic: Classic) -> str:

    if not change.get("grouped"):
        result = classic(request, ctx, change)
        if not result.startswith("skipped: the trust policy changed"):
            return result
    return undo_grouped_trust(request, ctx, change)


def undo_attach_after_commit(
    request: ClusterRequest, ctx: StepContext, change: dict[str, Any], classic: Classic
) -> str:

    if not change.get("grouped") and not _shared(request, ctx):
        return classic(request, ctx, change)
    return undo_grouped_attach(request, ctx, {**change, "policyChanged": change.get("policyChanged", True)})


def undo_policy_after_commit(
    request: ClusterRequest, ctx: StepContext, change: dict[str, Any], classic: Classic
) -> str:

    if not change.get("grouped") and not _shared(request, ctx):
        result = classic(request, ctx, change)
        if not result.startswith("skipped: the policy changed"):
            return result
    return undo_grouped_policy(request, ctx, change)
