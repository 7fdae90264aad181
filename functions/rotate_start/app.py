"""Rotation start: grant a new (AWSPENDING) external ID beside the current one, under the locks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import count_change, step_input
from atc_xaccount.steps.rotate import start

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
    result = start(request, ctx)
    count_change(metrics, {"action": result["trust"]}, "TrustPolicyWrites")
    return result
