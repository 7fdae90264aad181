"""Record the cluster as READY in the registry, with which external ID is its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import step_input
from atc_xaccount.steps.record import left_hashes, record

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
    preflight = event.get("preflight") or {}
    held = sorted({*(event.get("locks") or {}).get("keys", []), *(preflight.get("locks") or {}).get("keys", [])})
    hashes = left_hashes(preflight.get("seen"), event.get("changes"))
    result = record(
        request, ctx, event.get("execution"), event.get("externalIdFingerprint"), held, hashes, event.get("changes")
    )
    metrics.add_metric(name="ClusterOnboarded", unit=MetricUnit.Count, value=1)
    return result
