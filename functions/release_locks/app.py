"""Release the locks this execution holds (success and failure paths alike)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from atc_xaccount.observability import Tracer
from atc_xaccount.steps.context import StepContext
from atc_xaccount.steps.locking import release_locks

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution = event["execution"]
    logger.append_keys(execution=execution)
    # The slow path's locks (AcquireLocks) and those preflight took itself.
    held = sorted({*(event.get("locks") or {}).get("keys", []), *(event.get("preflightLocks") or {}).get("keys", [])})
    return release_locks(StepContext.from_env(os.environ, execution), held, owner=execution)
