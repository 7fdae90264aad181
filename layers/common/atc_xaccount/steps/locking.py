"""Serialization: one writer at a time per trust policy and per assume policy.

`UpdateAssumeRolePolicy` has no revision check, so concurrent read-modify-writes lose
updates; every workflow that writes takes these locks first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from atc_xaccount import iam_ops, locks
from atc_xaccount.aws_errors import backoff_delays
from atc_xaccount.errors import StaleRead
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext

T = TypeVar("T")
#: Reads of one document in one invocation before StaleRead goes to the state machine.
FENCE_ATTEMPTS = 6
#: (execution, lock key) -> the versions a write over the last fenced read replaces.
_prior: dict[tuple[str | None, str], list[str]] = {}


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


def trust_key(request: ClusterRequest) -> str:
    return locks.trust_lock_key(request.s3_account_id, request.access_role_name)


def policy_key(request: ClusterRequest) -> str:
    return locks.policy_lock_key(request.cluster_manager_account_id, request.assume_policy_name)


def fenced(ctx: StepContext, key: str, read: Callable[[], T], hash_of: Callable[[T], str]) -> T:
    """`read()` until its document is the one the lock's last writer left (`locks.fence`).

    IAM's reads catch up within seconds: re-read with backoff (bounded, in this Lambda),
    then raise StaleRead, which the state machine retries a few times more before failing
    without a write. A dry run reads once, as it is.
    """
    if ctx.dry_run or not ctx.locks_table:
        return read()
    dynamodb = ctx.sessions.local_client("dynamodb")
    for delay in [*backoff_delays(FENCE_ATTEMPTS), None]:
        found = read()
        try:
            _prior[(ctx.execution, key)] = locks.fence(dynamodb, ctx.locks_table, key, hash_of(found))
            return found
        except StaleRead:
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


def noted(ctx: StepContext, key: str, doc_hash: str | None) -> None:
    """After a write under the lock: the lock item keeps what the document now is."""
    owner = ctx.execution
    if ctx.dry_run or doc_hash is None or not owner or not ctx.locks_table:
        return
    locks.note_write(ctx.sessions.local_client("dynamodb"), ctx.locks_table, key, owner, doc_hash, prior_of(ctx, key))


def prior_of(ctx: StepContext, key: str) -> list[str]:
    """What this invocation's last fenced read of `key` says a write over it replaces."""
    return _prior.pop((ctx.execution, key), [])


def trust_hash(role: dict[str, Any] | None) -> str:
    """The fence's hash of a role's trust policy (a missing role: ABSENT)."""
    return locks.ABSENT if role is None else locks.document_hash(role["AssumeRolePolicyDocument"])


def policy_state_hash(state: Any) -> str:
    """The fence's hash of a managed policy (`iam_ops.PolicyState`, None when absent)."""
    return locks.policy_hash(state.default_version if state else None, state.document if state else None)


def fenced_policy_state(
    ctx: StepContext, request: ClusterRequest, iam: Any, arn: str, *, with_versions: bool = False
) -> Any:
    """The cluster manager account's assume policy (`iam_ops.PolicyState`, None when absent),
    read fenced under its lock key."""
    cm = request.cluster_manager_account_id
    return fenced(
        ctx,
        policy_key(request),
        lambda: iam_ops.get_policy_state(iam, cm, arn, with_versions=with_versions),
        policy_state_hash,
    )
