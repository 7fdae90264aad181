"""Remove this cluster's external ID from the node role's grant; the first revoke records REVOKING."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from atc_xaccount.observability import Tracer
from atc_xaccount.runtime import step_input
from atc_xaccount.steps.offboard import revoke_trust

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
    return revoke_trust(request, ctx, event.get("execution"), record_intent=bool(event.get("recordIntent")))
