"""EnsureAccessKey: create (or find) the cluster's access key through its Node API and browse through it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import step_input
from atc_xaccount.steps.access_key import ensure_access_key

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
    result = ensure_access_key(request, ctx, remaining_ms=context.get_remaining_time_in_millis)
    logger.info("access key", extra={"key_id": result["id"], "action": result["action"], "state": result["state"]})
    metrics.add_metric(name="AccessKeyWrites", unit=MetricUnit.Count, value=0 if result["action"] == "unchanged" else 1)
    return result
