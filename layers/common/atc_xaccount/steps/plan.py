"""`plan`: what an onboarding would change, computed by the same steps with writes off."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext
from atc_xaccount.steps.converge import attach_policy, ensure_assume_policy, merge_trust, resolve_external_id
from atc_xaccount.steps.preflight import external_id_for_sizing, preflight


def plan(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Preflight, then each write step in dry-run mode: the diff, and zero writes.

    When the cluster has no external ID yet, one of the generated length stands in, so
    the trust diff shows the grant's shape (its value is decided at onboarding).
    """
    dry = replace(ctx, dry_run=True)
    checks = preflight(request, dry)
    external_id, _, _ = external_id_for_sizing(request, dry)
    return {
        "request": {k: v for k, v in request.to_dict().items() if k != "externalId"},
        "preflight": checks,
        "changes": {
            "externalId": resolve_external_id(request, dry),
            "assumePolicy": ensure_assume_policy(request, dry),
            "attach": attach_policy(request, dry),
            "trust": merge_trust(request, dry, external_id),
        },
        "upToDate": checks["upToDate"],
    }
