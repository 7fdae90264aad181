"""DeleteAccessKey: delete the access key this project created for the cluster, before the revocation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import step_input
from atc_xaccount.steps.access_key import delete_access_key

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
    result = delete_access_key(request, ctx)
    metrics.add_metric(name="AccessKeysDeleted", unit=MetricUnit.Count, value=1 if result["action"] == "deleted" else 0)
    return result
