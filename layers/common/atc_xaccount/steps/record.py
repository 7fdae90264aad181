"""Record: register the cluster as READY and release its locks in one transaction."""

from __future__ import annotations

from typing import Any

from atc_xaccount import external_ids, locks, provenance, registry, users
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext, Targets


def registration_entry(
    request: ClusterRequest, ctx: StepContext, execution: str | None, external_id_fingerprint: str
) -> dict[str, Any]:
    """The registry record of a cluster whose access is in place (state READY)."""
    targets = Targets.of(request, ctx.partition)
    return {
        **{k: v for k, v in request.to_dict().items() if k != "externalId"},
        "nodeRoleArn": targets.node_role_arn,
        "accessRoleArn": targets.access_role_arn,
        "assumePolicyArn": targets.assume_policy_arn,
        "externalIdSecretName": external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        "externalIdFingerprint": external_id_fingerprint,
        "state": registry.READY,
        "lastExecution": execution,
    }


def left_hashes(seen: dict[str, str] | None, changes: dict[str, Any] | None) -> dict[str, str]:
    """What each locked document is as this execution leaves it: written, or as preflight read it."""
    hashes = dict(seen or {})
    written = {"trust#": (changes or {}).get("trust"), "policy#": (changes or {}).get("clusterManager")}
    for key in hashes:
        change = next((c for prefix, c in written.items() if key.startswith(prefix)), None)
        if change and change.get("hash"):
            hashes[key] = change["hash"]
    return hashes


def record(
    request: ClusterRequest,
    ctx: StepContext,
    execution: str | None,
    external_id_fingerprint: str,
    held: list[str] | None = None,
    hashes: dict[str, str] | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register the cluster as READY and release its locks, in one DynamoDB transaction.

    Each released lock records the hash of the document as this execution left it, so
    the next execution can lock without reading again. The fingerprint comes from Verify.
    """
    entry = registration_entry(request, ctx, execution, external_id_fingerprint)
    if ctx.dry_run:
        return entry
    released = locks.release(
        ctx.sessions.local_client("dynamodb"),
        ctx.locks_table,
        held or [],
        execution or "",
        hashes=hashes,
        also=[
            registry.update_item(ctx.registry_table, entry),
            users.add_item(
                ctx.registry_table, request.cluster_manager_account_id, request.cluster_id, users.user_entry(entry)
            ),
            *_provenance(request, ctx, changes),
        ],
    )
    return {**entry, "action": "recorded", "released": released["released"]}


def _provenance(request: ClusterRequest, ctx: StepContext, changes: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What the assume policy was before this onboarding, kept once for every cluster sharing it."""
    manager = (changes or {}).get("clusterManager") or {}
    if (manager.get("assumePolicy") or {}).get("grouped"):
        return []  # the group commit that wrote the policy kept what it was before (steps/commit.py)
    facts = provenance.provenance_of(
        manager.get("assumePolicy"),
        manager.get("attach"),
        request.node_role_name,
        Targets.of(request, ctx.partition).access_role_arn,
    )
    key = provenance.provenance_key(request.cluster_manager_account_id, request.assume_policy_name)
    return [provenance.provenance_item(ctx.registry_table, key, facts)] if facts else []
