"""A bulk file converges by document: its rows' intents are queued before any row runs.

Group commit alone groups what is in flight together; a bulk's Map runs 10 rows at a time
over a file whose documents are each shared by rows spread over the whole file, so each
write would serve about one row (docs/converge.md). The bulk workflow therefore runs in
two phases:

1. **Reserve** (a Map over the rows, no lock, no IAM write): Validate, Preflight
   (`reserving`), then `reserve` — the row's external ID stored as MergeTrust stores it,
   and its intents queued on the trust policy's queue and (for the first row of each
   access role, `bulk.mark_reservations`) the assume policy's, marked `reservedBy` the
   bulk and owned by the row's own onboarding execution, named before it starts.
2. **Onboard**: the ordinary onboardings. The first commit of each document finds every
   row's intent queued and serves them all in one write. A reserved row's Preflight
   (`route_reserved`) sends it down the grouped path even when another row's commit has
   already written its grant, so it takes that result as its own change (its undo,
   its propagation wait, its verification). A reserved row that fails in Preflight is
   compensated like any grouped onboarding: its intents withdrawn, what was written for
   it removed.

A reservation is served only by a commit of the same bulk (`queue.servable`): if the bulk
is aborted before phase 2, no grant is ever written for its rows.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import queue
from atc_xaccount.bulk import tag_of
from atc_xaccount.errors import ExternalIdSecretMismatch
from atc_xaccount.external_ids import secret_name
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.commit import own_external_id, stored_request
from atc_xaccount.steps.context import StepContext
from atc_xaccount.steps.locking import policy_key, trust_key


def reserve(request: ClusterRequest, ctx: StepContext, preflight: dict[str, Any], on_policy: bool) -> dict[str, Any]:
    """Phase 1 for one row: store its external ID and queue its intents (no lock, no IAM call).

    Only a row Preflight found groupable (pure additions) reserves; any other row runs in
    phase 2 as any onboarding does. `on_policy`: this row reserves on the assume policy.
    """
    owner = ctx.execution or ""
    tag = tag_of(owner)
    plan = preflight.get("plan") or {}
    if tag is None or not preflight.get("groupable") or not plan.get("grouped"):
        return {"reserved": []}
    dynamodb, table, cluster = ctx.sessions.local_client("dynamodb"), ctx.locks_table, request.cluster_id
    secret, external_id = own_external_id(request, ctx, plan)
    base = {
        "execution": owner,
        "request": stored_request(request),
        "reservedBy": tag,
        "expiresAt": queue.now_ms() + queue.RESERVATION_SECONDS * 1000,
    }
    reserved = []
    if on_policy and plan.get("clusterManagerChange"):
        queue.enqueue(dynamodb, table, policy_key(request), cluster, base)
        reserved.append(policy_key(request))
    trust_intent = {
        **base,
        "secretCreated": secret["action"] == "created",
        "fingerprint": ctx.fingerprints.of(external_id),
    }
    queue.enqueue(dynamodb, table, trust_key(request), cluster, trust_intent)
    reserved.append(trust_key(request))
    return {"reserved": reserved}


def reserved_on(request: ClusterRequest, ctx: StepContext, owner: str | None) -> set[str]:
    """Phase 2: the documents ("policy", "trust") on which this bulk row's execution has an
    intent queued or a result served. Two consistent reads, for bulk rows only."""
    if tag_of(owner) is None or not ctx.locks_table:
        return set()
    keys = {"policy": policy_key(request), "trust": trust_key(request)}
    return queue.held_by(ctx.sessions.local_client("dynamodb"), ctx.locks_table, keys, request.cluster_id, owner)


def route_reserved(
    request: ClusterRequest, ctx: StepContext, result: dict[str, Any], reserved: set[str], cm_change: bool
) -> None:
    """A reserved row takes the grouped path whatever its Preflight found: a commit of its bulk
    may have written its grant already, and that write is this row's change (undo, wait, verify).
    `cm_change`: the assume policy or its attachment still needs a change."""
    plan = result["plan"]
    if plan["externalId"]["replacing"]:
        # The secret was changed since phase 1 stored it: the reservation is not this ID's.
        raise ExternalIdSecretMismatch(
            request.cluster_id,
            secret_name(ctx.secret_prefix, request.cluster_id),
            "the secret changed since the bulk reserved this row",
        )
    result.update(upToDate=False, verified=None, groupable=True, reserved=sorted(reserved))
    plan.update(grouped=True, clusterManagerChange=bool(cm_change or "policy" in reserved))
