"""Validate: the first state of every workflow turns the event into a typed, authorized request.

Authorization happens here, before any call into a target account (DESIGN 8): a whole
event speaks only for the account that sent it, and only the account pairs the
deployment lists may be connected. A bare detail (a manual execution) is authorized by
whoever may start the state machine; the pairs apply to it too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from atc_xaccount import external_ids, registry, staged_ids
from atc_xaccount.authorization import AccountPairs, authorize_pair, authorize_sender
from atc_xaccount.errors import InvalidEvent
from atc_xaccount.model import ClusterRequest, Defaults, event_sender, parse_event, parse_rotation
from atc_xaccount.node_api_config import deployment_problems
from atc_xaccount.steps.admission import check_owner
from atc_xaccount.steps.context import StepContext

REGISTERED, DEREGISTERED = "Cluster Registered", "Cluster Deregistered"
ROTATE = "Rotate External ID"

#: The audit's repair input: the registered request under this key. A repair may only bring
#: back what the registry says is READY (never a cluster being, or already, deregistered).
REPAIR_KEY = "repairOf"

_WHAT = {REGISTERED: "registration", DEREGISTERED: "deregistration", ROTATE: "rotation"}


#: The deployment's settings a `detail.nodeApi` is checked against (template.yaml Globals).
NODE_API_SECRET_PREFIX_ENV = "NODE_API_SECRET_PREFIX"  # noqa: S105 - a variable name, not a secret
DEPLOYMENT_ACCOUNT_ENV = "DEPLOYMENT_ACCOUNT_ID"


def validate(
    event: Any,
    defaults: Defaults,
    detail_type: str = REGISTERED,
    pairs: AccountPairs | None = None,
    ctx: StepContext | None = None,
    environ: Mapping[str, str] = os.environ,
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
    if detail_type == REGISTERED:
        check_node_api(request, environ)
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
