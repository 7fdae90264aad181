"""Preflight: prove both accounts' prerequisites and quotas before any write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import step_input
from atc_xaccount.steps.preflight import preflight

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request, ctx = step_input(event, logger)
    result = preflight(
        request,
        ctx,
        owner=event.get("execution"),
        locked=bool(event.get("locked")),
        repair=bool(event.get("repair")),
        reserving=bool(event.get("reserving")),
    )
    metrics.add_metric(name="PreflightPassed", unit=MetricUnit.Count, value=1)
    return result
