"""Validate: turn the EventBridge event (or its detail) into an authorized request, or refuse it.

No call into a target account: a bad or unauthorized event fails here, naming the field
and the rule (or the accounts and the parameter), before any write. An external ID the
event gives is moved into the cluster's secret here, the first step that may write it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.authorization import AccountPairs
from atc_xaccount.model import Defaults
from atc_xaccount.observability import Tracer
from atc_xaccount.steps.context import StepContext
from atc_xaccount.steps.validate import REGISTERED, validate

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # the event may carry the external ID
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution=event.get("execution"))
    result = validate(
        event.get("event"),
        Defaults.from_env(os.environ),
        event.get("detailType", REGISTERED),
        AccountPairs.from_env(os.environ),
        StepContext.from_env(os.environ, event.get("execution")),
    )
    logger.append_keys(cluster_id=result["request"]["clusterId"])
    metrics.add_metric(name="EventAccepted", unit=MetricUnit.Count, value=1)
    return result
