"""Glue between a Lambda event and a step: the request, the context, the correlation keys.

Kept here so each handler is a few lines and every step logs the same keys.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from atc_xaccount import bootstrap_names
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics


def step_input(event: dict[str, Any], logger: Logger, context: Any = None) -> tuple[ClusterRequest, StepContext]:
    """Parse the state's input and tag every log line with the cluster and execution.

    With the Lambda `context`, the step's in-Lambda retries stop in time (its remaining time).
    """
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        from atc_xaccount.aws_errors import set_deadline

        set_deadline(context.get_remaining_time_in_millis())
    request = ClusterRequest.from_dict(event["request"])
    execution = event.get("execution")
    logger.append_keys(cluster_id=request.cluster_id, execution=execution)
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    # An AccessDenied of a target account's automation role then names the parameter to set.
    bootstrap_names.expect(
        [
            ("NodeRoleName", "role", cm, request.node_role_name),
            ("AssumePolicyName", "policy", cm, request.assume_policy_name),
            ("AccessRoleName", "role", s3, request.access_role_name),
            ("AccessPolicyName", "policy", s3, request.access_policy_name),
        ]
    )
    return request, StepContext.from_env(os.environ, execution)


def count_change(metrics: Metrics, record: dict[str, Any], metric: str) -> None:
    """One metric data point per change the step applied (0 when nothing changed)."""
    from aws_lambda_powertools.metrics import MetricUnit

    changed = record.get("action") not in (None, "unchanged") and record.get("applied", True)
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1 if changed else 0)
