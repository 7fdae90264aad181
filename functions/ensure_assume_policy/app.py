"""Ensure atc-s3-assume-role allows sts:AssumeRole on the access role, and is attached to the node role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import count_change, step_input
from atc_xaccount.steps.converge import grant_assume_policy

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
    result = grant_assume_policy(request, ctx, event["plan"])
    count_change(metrics, result["assumePolicy"], "AssumePolicyWrites")
    count_change(metrics, result["attach"], "PolicyAttachments")
    return result
