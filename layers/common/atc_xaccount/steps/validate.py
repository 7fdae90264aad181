"""Validate: the first state of every workflow turns the event into a typed, authorized request.

Authorization happens here, before any call into a target account (DESIGN 8): a whole
event speaks only for the account that sent it, and only the account pairs the
deployment lists may be connected. A bare detail (a manual execution) is authorized by
whoever may start the state machine; the pairs apply to it too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from atc_xaccount import external_ids, registry, staged_ids
from atc_xaccount.authorization import AccountPairs, authorize_pair, authorize_sender
from atc_xaccount.model import ClusterRequest, Defaults, event_sender, parse_event, parse_rotation
from atc_xaccount.steps.admission import check_owner
from atc_xaccount.steps.context import StepContext

REGISTERED, DEREGISTERED = "Cluster Registered", "Cluster Deregistered"
ROTATE = "Rotate External ID"

#: The audit's repair input: the registered request under this key. A repair may only bring
#: back what the registry says is READY (never a cluster being, or already, deregistered).
REPAIR_KEY = "repairOf"

_WHAT = {REGISTERED: "registration", DEREGISTERED: "deregistration", ROTATE: "rotation"}


def validate(
    event: Any,
    defaults: Defaults,
    detail_type: str = REGISTERED,
    pairs: AccountPairs | None = None,
    ctx: StepContext | None = None,
) -> dict[str, Any]:
    """Parse and authorize the event (or its detail); no call into a target account.

    `pairs` None skips the pair check (the operator CLI, which does not know the
    deployment's parameter); the workflows always pass the deployment's pairs. With `ctx`
    (the workflow's Validate) no external ID leaves this step: a registration's is moved
    into the cluster's secret (`move_external_id`), any other request's is dropped.
    """
    repair = isinstance(event, dict) and set(event) == {REPAIR_KEY}
    if repair:
        event = event[REPAIR_KEY]
    phase = None
    if detail_type == ROTATE:
        request, phase = parse_rotation(event, defaults)
    else:
        request = parse_event(event, defaults, detail_type)
    authorize_sender(event_sender(event), request.cluster_manager_account_id)
    if pairs is not None:
        authorize_pair(
            pairs, request.cluster_manager_account_id, request.s3_account_id, "repair" if repair else _WHAT[detail_type]
        )
    if ctx is not None:
        request = move_external_id(request, ctx) if detail_type == REGISTERED else replace(request, external_id=None)
    result: dict[str, Any] = {"request": request.to_dict(), "repair": repair}
    if phase is not None:
        result["phase"] = phase
    return result


def move_external_id(request: ClusterRequest, ctx: StepContext) -> ClusterRequest:
    """The request with the ID an event gave moved into the cluster's secret (`staged_ids`).

    Only its fingerprint travels from here on: Step Functions keeps every state's input and
    output in the execution history. The cluster's owner is checked first (nothing is
    staged into another account's cluster); a request without an ID is returned as it is.
    """
    if request.external_id is None:
        return request
    check_owner(registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id), request)
    staged = staged_ids.stage(
        ctx.sessions.local_client("secretsmanager"),
        name=external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        cluster_id=request.cluster_id,
        value=request.external_id,
    )
    return replace(
        request,
        external_id=None,
        requested_fingerprint=ctx.fingerprints.of(request.external_id),
        requested_created=bool(staged["secretCreated"]),
    )
