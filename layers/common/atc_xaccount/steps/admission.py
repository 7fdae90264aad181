"""Whose cluster is it, and may this request act on it? Read from the registry, before any write.

A cluster belongs to the cluster manager account that registered it (DESIGN 8): a
request about its `clusterId` from another account is refused, never moved. A cluster
whose deregistration started (REVOKING) is granted nothing until that deregistration
finishes, and an audit's repair restores only a READY cluster.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import registry
from atc_xaccount.errors import DeregistrationIncomplete, NotRepairable, RequestNotAuthorized
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext


def check_owner(entry: dict[str, Any] | None, request: ClusterRequest) -> None:
    """Refuse a request about a cluster another cluster manager account registered."""
    if entry is None or entry.get("state") == registry.REVOKED:
        return  # never registered, or deregistered everywhere: free to register afresh
    owner = entry.get("clusterManagerAccountId")
    if owner and owner != request.cluster_manager_account_id:
        raise RequestNotAuthorized(
            f"cluster {request.cluster_id} belongs to cluster manager account {owner}, which registered it; "
            f"account {request.cluster_manager_account_id} may not change it",
            fix=f"choose another clusterId, or deregister {request.cluster_id} from account {owner} first",
            account=request.cluster_manager_account_id,
            clusterId=request.cluster_id,
            owner=owner,
        )


def admit_onboarding(request: ClusterRequest, ctx: StepContext, *, repair: bool = False) -> dict[str, Any] | None:
    """The cluster's registry entry, once this onboarding (or repair) may act on it."""
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id)
    check_owner(entry, request)
    state = (entry or {}).get("state")
    if state == registry.REVOKING:
        raise DeregistrationIncomplete(request.cluster_id, (entry or {}).get("lastExecution"))
    if repair and state != registry.READY:
        raise NotRepairable(request.cluster_id, state)
    return entry
