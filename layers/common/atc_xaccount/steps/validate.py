"""Validate: the first state of both workflows turns the event into a typed request."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from atc_xaccount.errors import InvalidEvent
from atc_xaccount.model import ClusterRequest, Defaults, parse_event
from atc_xaccount.node_api_config import deployment_problems

REGISTERED, DEREGISTERED = "Cluster Registered", "Cluster Deregistered"

#: The deployment's settings a `detail.nodeApi` is checked against (template.yaml Globals).
NODE_API_SECRET_PREFIX_ENV = "NODE_API_SECRET_PREFIX"  # noqa: S105 - a variable name, not a secret
DEPLOYMENT_ACCOUNT_ENV = "DEPLOYMENT_ACCOUNT_ID"


def validate(
    event: Any, defaults: Defaults, detail_type: str = REGISTERED, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """Parse the EventBridge event (or its detail) into a request; no AWS call."""
    request = parse_event(event, defaults, detail_type)
    if detail_type == REGISTERED:
        check_node_api(request, environ)
    return {"request": request.to_dict()}


def check_node_api(request: ClusterRequest, environ: Mapping[str, str]) -> None:
    """A Node API the access key step could not use fails here, not after the IAM changes.

    The key's storage is the first bucket; the secret must be one the steps may read.
    """
    if request.node_api is None:
        return
    problems = (
        []
        if request.buckets
        else [("detail.nodeApi", "needs detail.buckets: the access key's storage is the first bucket")]
    )
    problems += deployment_problems(
        request.node_api,
        "detail.nodeApi.credentialsSecretArn",
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        account=environ.get(DEPLOYMENT_ACCOUNT_ENV) or None,
        secret_prefix=environ.get(NODE_API_SECRET_PREFIX_ENV, "atc-node-api/"),
    )
    if problems:
        raise InvalidEvent(problems[0][0], problems[0][1], problems=problems)
