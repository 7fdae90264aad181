"""Validate a bulk registration file; write its good rows for the Distributed Map."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.authorization import AccountPairs
from atc_xaccount.observability import Tracer
from atc_xaccount.steps.bulk import prepare
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
    ctx = StepContext.from_env(os.environ, event.get("execution"))
    result = prepare(event["bucket"], event["key"], ctx, AccountPairs.from_env(os.environ))
    metrics.add_metric(name="BulkRowsRejected", unit=MetricUnit.Count, value=result["rejected"])
    return result
