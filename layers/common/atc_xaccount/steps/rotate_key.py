"""Zero-touch rotation: the access key moves to the pending external ID between start and finish.

With a Node API (issue 19 item 4) the rotation workflow does what the operator otherwise
does in Cluster Manager between the two phases: after `start` granted the pending ID beside
the current one (and the propagation wait), RotateAccessKey writes the pending ID into the
key's `assume_role_external_id` and browses through the key, with bounded retries for IAM;
only then does `finish` withdraw the current ID. A key that cannot browse with the new ID
is put back on the current one (still granted), so the cluster always has a working key,
and the execution fails before anything is withdrawn.

A key this project did not create (or none) is not touched: `managed: false`, and the
rotation goes on as without a Node API (the operator updates the key by hand).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from atc_xaccount import access_key_custody, access_keys, external_ids, registry
from atc_xaccount.errors import AccessKeyUnusable, PrerequisiteMissing
from atc_xaccount.model import ClusterRequest
from atc_xaccount.node_api import NodeApiClient
from atc_xaccount.steps.access_key import key_storage, node_api_client, prove, rejected
from atc_xaccount.steps.context import StepContext

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
#: After a failed move, the key back on the current ID is proven with a short retry: that
#: ID has opened the role all along, so only a Node API hiccup can fail it.
RESTORE_ATTEMPTS = 2


def rotate_access_key(
    request: ClusterRequest,
    ctx: StepContext,
    *,
    sleep: Callable[[float], None] = time.sleep,
    remaining_ms: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Move the cluster's key to the pending ID and prove it; `managed: false` when the key is not ours."""
    if request.node_api is None:
        raise PrerequisiteMissing("detail.nodeApi", request.cluster_id, "automation")
    config = request.node_api
    dynamodb, secrets = ctx.sessions.local_client("dynamodb"), ctx.sessions.local_client("secretsmanager")
    entry = registry.get(dynamodb, ctx.registry_table, request.cluster_id) or {}
    recorded = entry.get("accessKey") or {}
    name = access_key_custody.key_secret_name(ctx.secret_prefix, request.cluster_id)
    held = access_key_custody.read_key(secrets, name)
    if held is None or not recorded.get("createdByUs") or recorded.get("id") != held.key_id:
        return {"managed": False, "reason": "no access key created by atc-xaccount: update it by hand"}
    secret = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    pending = external_ids.read_version(secrets, secret, PENDING)
    current = external_ids.read_version(secrets, secret, CURRENT)
    if pending is None or current is None:
        raise PrerequisiteMissing("pending external ID (start the rotation first)", secret, "automation")
    client = node_api_client(config, ctx)
    client.hide.update({held.secret, pending[1], current[1]})
    target = ctx.fingerprints.of(pending[1])
    action = "unchanged"
    if recorded.get("externalIdFingerprint") != target:
        _move(request, ctx, client, held, pending[1])
        action = "updated"
    attempts, failure = prove(client, held.key_id, held.secret, sleep=sleep, remaining_ms=remaining_ms)
    if failure is None:
        _record(ctx, dynamodb, request, recorded, held, config.url, name, target, None)
        return {"managed": True, "id": held.key_id, "state": access_keys.VERIFIED, "action": action}
    kept = "nothing was withdrawn: both external IDs stay granted; do not finish the rotation by hand"
    restored = _restore(request, ctx, client, held, current[1])
    if restored:
        kept = f"the key carries the current external ID again and browses; {kept}"
    carried = ctx.fingerprints.of(current[1]) if restored else target
    _record(ctx, dynamodb, request, recorded, held, config.url, name, carried, None if restored else failure)
    raise AccessKeyUnusable(config.url, held.key_id, attempts, failure, kept=kept)


def _move(
    request: ClusterRequest,
    ctx: StepContext,
    client: NodeApiClient,
    held: access_key_custody.HeldKey,
    external_id: str,
) -> None:
    """PUT the key's storage with `external_id`, only into a key our secret opens."""
    proof = client.key_self(held.key_id, held.secret)
    if not proof.ok:
        raise rejected(client, "UpdateAccessKey", proof, why="the key with this id does not open with our secret")
    updated = client.update_access_key(held.key_id, access_keys.update_body(key_storage(request, ctx, external_id)))
    if not updated.ok:
        raise rejected(client, "UpdateAccessKey", updated)


def _restore(
    request: ClusterRequest,
    ctx: StepContext,
    client: NodeApiClient,
    held: access_key_custody.HeldKey,
    current: str,
) -> bool:
    """The key back on the current ID (granted all along), proven; False if even that fails."""
    if ctx.dry_run:
        return False
    back = client.update_access_key(held.key_id, access_keys.update_body(key_storage(request, ctx, current)))
    if not back.ok:
        return False
    _, failure = prove(client, held.key_id, held.secret, sleep=lambda _: None, attempts=RESTORE_ATTEMPTS)
    return failure is None


def _record(
    ctx: StepContext,
    dynamodb: Any,
    request: ClusterRequest,
    recorded: dict[str, Any],
    held: access_key_custody.HeldKey,
    url: str,
    name: str,
    fingerprint: str,
    error: str | None,
) -> None:
    """The key's record in the registry: which ID it carries (by fingerprint) and whether it browses."""
    state = access_keys.VERIFIED if error is None else access_keys.UNUSABLE
    record = access_keys.key_record(
        key_id=held.key_id, url=url, state=state, external_id_fingerprint=fingerprint, secret_name=name, error=error
    )
    if record != recorded and not ctx.dry_run:
        access_key_custody.set_registry_record(dynamodb, ctx.registry_table, request.cluster_id, record)
