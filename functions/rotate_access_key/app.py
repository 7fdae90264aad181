"""RotateAccessKey: between a rotation's start and finish, move the access key to the pending external ID, browse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import step_input
from atc_xaccount.steps.rotate_key import rotate_access_key

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
    result = rotate_access_key(request, ctx, remaining_ms=context.get_remaining_time_in_millis)
    facts = {k: result[k] for k in ("managed", "id", "action", "state") if k in result}
    logger.info("access key rotation", extra=facts)
    metrics.add_metric(name="AccessKeyWrites", unit=MetricUnit.Count, value=int(result.get("action") == "updated"))
    return result
