"""Validate: the first state of both workflows turns the event into a typed request."""

from __future__ import annotations

from typing import Any

from atc_xaccount.model import Defaults, parse_event

REGISTERED, DEREGISTERED = "Cluster Registered", "Cluster Deregistered"


REGISTERED, DEREGISTERED = "Cluster Registered", "Cluster Deregistered"


def validate(event: Any, defaults: Defaults, detail_type: str = REGISTERED) -> dict[str, Any]:
    """Parse the EventBridge event (or its detail) into a request; no AWS call."""
    return {"request": parse_event(event, defaults, detail_type).to_dict()}
