"""Undo exactly what this failed execution changed, where nobody changed it since."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import step_input
from atc_xaccount.steps.compensate import compensate

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
    result = compensate(
        request,
        ctx,
        event.get("changes") or {},
        event.get("externalId"),
        event.get("execution"),
        event.get("error"),
        event.get("preflight"),
        event.get("cause"),
        attempt=int(event.get("attempt") or 0),
    )
    metrics.add_metric(name="ExecutionCompensated", unit=MetricUnit.Count, value=1)
    return result
