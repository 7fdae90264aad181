"""Serialization: one writer at a time per trust policy and per assume policy.

`UpdateAssumeRolePolicy` has no revision check, so concurrent read-modify-writes lose
updates; every workflow that writes takes these locks first.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import locks
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext


def lock_keys(request: ClusterRequest) -> list[str]:
    """The resources an onboarding or offboarding of `request` read-modify-writes."""
    return [
        locks.trust_lock_key(request.s3_account_id, request.access_role_name),
        locks.policy_lock_key(request.cluster_manager_account_id, request.assume_policy_name),
    ]


def acquire_locks(
    request: ClusterRequest, ctx: StepContext, owner: str, also: list[ClusterRequest] | None = None
) -> dict[str, Any]:
    """Serialize on the target role and policy (and those of `also`: a cluster's former
    placements, revoked in the same offboarding); `ResourceLocked` makes the ASL retry."""
    keys = [key for each in [request, *(also or [])] for key in lock_keys(each)]
    return locks.acquire(ctx.sessions.local_client("dynamodb"), ctx.locks_table, keys, owner)


def release_locks(ctx: StepContext, held: list[str], owner: str) -> dict[str, Any]:
    """Release what this execution took (nothing, on the path where nothing changed)."""
    if not held:
        return {"released": [], "owner": owner}
    return locks.release(ctx.sessions.local_client("dynamodb"), ctx.locks_table, held, owner)
