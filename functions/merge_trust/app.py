"""Merge the node role's external-ID grant into the access role's trust policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import count_change, step_input
from atc_xaccount.steps.converge import merge_trust
from atc_xaccount.steps.reserve import reserve

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request, ctx = step_input(event, logger, context)
    if "reserve" in event:  # a bulk's phase 1: store the ID, queue the intents (steps/reserve.py)
        return reserve(request, ctx, event["preflight"], on_policy=bool(event["reserve"]))
    result = merge_trust(request, ctx, plan=event.get("plan"))
    count_change(metrics, result, "TrustPolicyWrites")
    count_change(metrics, result.get("externalId") or {}, "ExternalIdStored")
    return result
