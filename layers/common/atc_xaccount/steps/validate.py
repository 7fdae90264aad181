"""Validate: the first state of every workflow turns the event into a typed, authorized request.

Authorization happens here, before any call into a target account (DESIGN 8): a whole
event speaks only for the account that sent it, and only the account pairs the
deployment lists may be connected. A bare detail (a manual execution) is authorized by
whoever may start the state machine; the pairs apply to it too.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount.authorization import AccountPairs, authorize_pair, authorize_sender
from atc_xaccount.model import Defaults, event_sender, parse_event, parse_rotation

REGISTERED, DEREGISTERED = "Cluster Registered", "Cluster Deregistered"
ROTATE = "Rotate External ID"

#: The audit's repair input: the registered request under this key. A repair may only bring
#: back what the registry says is READY (never a cluster being, or already, deregistered).
REPAIR_KEY = "repairOf"

_WHAT = {REGISTERED: "registration", DEREGISTERED: "deregistration", ROTATE: "rotation"}


def validate(
    event: Any, defaults: Defaults, detail_type: str = REGISTERED, pairs: AccountPairs | None = None
) -> dict[str, Any]:
    """Parse and authorize the event (or its detail); no AWS call.

    `pairs` None skips the pair check (the operator CLI, which does not know the
    deployment's parameter); the workflows always pass the deployment's pairs.
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
    result: dict[str, Any] = {"request": request.to_dict(), "repair": repair}
    if phase is not None:
        result["phase"] = phase
    return result
