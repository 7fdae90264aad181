"""List the registered clusters the drift audit checks."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.steps.audit import list_registered
from atc_xaccount.steps.context import StepContext

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution=event.get("execution"))
    result = list_registered(
        StepContext.from_env(os.environ, event.get("execution")),
        event.get("start"),
        event.get("previous"),
        event.get("tally"),
        scan=event.get("scan", True),
    )
    metrics.add_metric(name="ClustersAudited", unit=MetricUnit.Count, value=len(event.get("previous") or []))
    return result
