"""Write the bulk onboarding's report: one row per line of the file, status and cause."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from atc_xaccount.observability import Tracer
from atc_xaccount.steps.bulk import report
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
    execution = event.get("execution", "bulk")
    logger.append_keys(execution=execution)
    ctx = StepContext.from_env(os.environ, execution)
    return report(event["bucket"], event["key"], event["manifest"], event["rejectedKey"], execution, ctx)
