"""Rotation finish: prove the pending external ID opens the role, then withdraw the current one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import count_change, step_input
from atc_xaccount.steps.rotate import finish

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
    result = finish(request, ctx)
    count_change(metrics, {"action": result["trust"]}, "TrustPolicyWrites")
    metrics.add_metric(name="ExternalIdRotated", unit=MetricUnit.Count, value=1)
    return result
