"""Undo what a group commit wrote for one cluster, and only that (docs/converge.md).

A commit's write holds other clusters' grants too, so its `before` is nobody's to restore.
A cluster's own change is what the commit added for it: its external ID in its node
role's grant, its access role in the assume policy, the policy's attachment to its node
role. Undoing it is removing exactly that, under the document's lock, unless another
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

#: Tries for a document's lock: commits hold it for one invocation only.
LOCK_ATTEMPTS = 12


def _locked(ctx: StepContext, key: str, undo: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    dynamodb, owner = ctx.sessions.local_client("dynamodb"), ctx.execution or ""
    for delay in [*backoff_delays(LOCK_ATTEMPTS), None]:
        try:
            locks.acquire(dynamodb, ctx.locks_table, [key], owner)
            break
        except ResourceLocked:
            if delay is None:
                raise
            time.sleep(max(delay, 0.05))
    try:
        return undo()
    finally:
        locks.release(dynamodb, ctx.locks_table, [key], owner)


def _no_longer_a_user(request: ClusterRequest, ctx: StepContext) -> None:
    dynamodb = ctx.sessions.local_client("dynamodb")
    users.remove(dynamodb, ctx.registry_table, request.cluster_manager_account_id, request.cluster_id)


def undo_grouped_trust(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    """Remove this cluster's external ID from its node role's grant (kept if another cluster shares it)."""
    _no_longer_a_user(request, ctx)
    if not change.get("externalIdAdded"):
        return "unchanged: the grant was there before this execution"
    record = _locked(ctx, trust_key(request), lambda: revoke_trust(request, ctx))
    return "removed" if record.get("removed") else f"kept: {record.get('reason', 'nothing of this cluster left')}"


def undo_grouped_attach(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    """The attachment goes with the assume policy's undo, which knows whether another cluster needs it."""
    if change.get("policyChanged"):
        return "with the assume policy"
    return undo_grouped_policy(request, ctx, change)


def undo_grouped_policy(request: ClusterRequest, ctx: StepContext, change: dict[str, Any]) -> str:
    """Remove this cluster's access role from the assume policy (and detach, delete) unless still needed."""
    _no_longer_a_user(request, ctx)
    record = _locked(ctx, policy_key(request), lambda: revoke_policy(request, ctx))
    return str(record.get("reason") or record.get("action") or "unchanged")
