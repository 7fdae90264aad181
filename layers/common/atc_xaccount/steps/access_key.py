"""The cluster's access key through its Node API: create (or find) it, prove it, delete it.

Onboarding's EnsureAccessKey runs after Record: the IAM changes are in place and
recorded, so whatever happens to the key they stay (they are right; the key is what
failed) and the execution fails with a named error saying so. The key is proven by
browsing its storage through the key itself: the node assumes the access role with the
key's external ID and lists the bucket, the path an ATC node takes for every transfer.
A re-delivered event finds the key (by the id kept in its secret), sees nothing to
change, browses and writes nothing. Deregistration deletes the key this project created,
and only that one, before the IAM grants are revoked. docs/node-api.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from atc_xaccount import access_key_custody, access_keys, external_ids, registry
from atc_xaccount.aws_errors import DEFAULT_RETRY_BASE_SECONDS, RETRY_BASE_ENV
from atc_xaccount.errors import AccessKeyRejected, AccessKeyUnusable, NodeApiUnavailable, PrerequisiteMissing
from atc_xaccount.model import ClusterRequest
from atc_xaccount.node_api import TIMEOUT_SECONDS, Answer, NodeApiClient, read_node_user
from atc_xaccount.node_api_config import NodeApiConfig
from atc_xaccount.steps.context import StepContext, Targets

#: What stays when the key fails: the message every key failure of onboarding carries.
KEPT = (
    "the IAM changes are in place and recorded (they are right: the access key is what failed); "
    "fix what the Node API answered and deliver the event again"
)
#: Browse attempts, and the first delay between them: IAM can deny AssumeRole for seconds
#: to a minute after a trust change (DESIGN 6). 2+4+8+16+16+16 s = about a minute in AWS.
BROWSE_ATTEMPTS = 7
BROWSE_BASE_SECONDS = 2.0
BROWSE_CAP_SECONDS = 16.0
#: Statuses that say the key itself is refused: waiting for IAM cannot help.
KEY_REFUSED = (401, 404)
#: The secret's stage a rotation keeps the new external ID in until it finishes.
PENDING = "AWSPENDING"


def browse_delays(attempts: int = BROWSE_ATTEMPTS) -> list[float]:
    """Doubling delays, scaled as the in-Lambda IAM retries are (0 on the emulator)."""
    scale = float(os.environ.get(RETRY_BASE_ENV, DEFAULT_RETRY_BASE_SECONDS)) / DEFAULT_RETRY_BASE_SECONDS
    return [min(BROWSE_CAP_SECONDS, BROWSE_BASE_SECONDS * 2**n) * scale for n in range(attempts - 1)]


def node_api_client(config: NodeApiConfig, ctx: StepContext) -> NodeApiClient:
    username, password = read_node_user(
        ctx.sessions.local_client("secretsmanager"), config.credentials_secret_arn, config.url
    )
    return NodeApiClient(config.url, username, password, secret_arn=config.credentials_secret_arn)


def key_storage(request: ClusterRequest, ctx: StepContext, external_id: str) -> dict[str, Any]:
    config = _config(request)
    return access_keys.storage(
        bucket=request.buckets[0],
        path=config.path,
        endpoint=access_keys.s3_endpoint(ctx.partition, ctx.sessions.region),
        role_arn=Targets.of(request, ctx.partition).access_role_arn,
        external_id=external_id,
        cluster_id=request.cluster_id,
    )


def _config(request: ClusterRequest) -> NodeApiConfig:
    if request.node_api is None:
        raise PrerequisiteMissing("detail.nodeApi", request.cluster_id, "automation")
    return request.node_api


def _external_id(request: ClusterRequest, ctx: StepContext, expected_fingerprint: str) -> str:
    """The cluster's external ID from its secret, checked against the registry's fingerprint."""
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    _, external_id = external_ids.require_external_id(ctx.sessions.local_client("secretsmanager"), name)
    if not ctx.fingerprints.matches(expected_fingerprint, external_id):
        raise PrerequisiteMissing("external ID whose fingerprint the registry recorded, in secret", name, "automation")
    return external_id


def ensure_access_key(
    request: ClusterRequest,
    ctx: StepContext,
    *,
    sleep: Callable[[float], None] = time.sleep,
    remaining_ms: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Create the key (or find and leave it), browse through it, record its id: the Ready event's `accessKey`."""
    config = _config(request)
    dynamodb, secrets = ctx.sessions.local_client("dynamodb"), ctx.sessions.local_client("secretsmanager")
    entry = registry.get(dynamodb, ctx.registry_table, request.cluster_id) or {}
    current = entry.get("externalIdFingerprint")
    if not current:
        raise PrerequisiteMissing("registered cluster", request.cluster_id, "automation")
    recorded = entry.get("accessKey") or {}
    name = access_key_custody.key_secret_name(ctx.secret_prefix, request.cluster_id)
    held = access_key_custody.read_key(secrets, name)
    if held is not None and held.url != config.url:
        raise AccessKeyRejected(
            config.url,
            "CreateAccessKey",
            409,
            f"not sent: this cluster's access key {held.key_id} lives on {held.url}; deregister the cluster "
            "(which deletes it) before naming another Node API",
            kept=KEPT,
        )
    client = node_api_client(config, ctx)
    if held is None:
        new_id, new_secret = access_keys.new_key_id(), access_keys.new_key_secret()
        held = access_key_custody.create_key(secrets, name, request.cluster_id, new_id, new_secret, config.url)
    client.hide.add(held.secret)
    action, carried = _converge(request, ctx, client, held, current, recorded)
    # A key written now may wait for IAM; one left as it was is retried once, then rewritten.
    tries = BROWSE_ATTEMPTS if action != "unchanged" else 2
    attempts, failure = prove(client, held.key_id, held.secret, sleep=sleep, remaining_ms=remaining_ms, attempts=tries)
    if failure is not None and action == "unchanged":
        # A GET does not show the key's credentials: a key that looks right but cannot
        # browse is rewritten once with the registry's external ID, then proven again.
        action, carried = _rewrite(request, ctx, client, held, current), current
        more, failure = prove(client, held.key_id, held.secret, sleep=sleep, remaining_ms=remaining_ms)
        attempts += more
    state = access_keys.VERIFIED if failure is None else access_keys.UNUSABLE
    record = access_keys.key_record(
        key_id=held.key_id,
        url=config.url,
        state=state,
        external_id_fingerprint=carried,
        secret_name=name,
        error=failure,
    )
    if record != recorded and not ctx.dry_run:
        access_key_custody.set_registry_record(dynamodb, ctx.registry_table, request.cluster_id, record)
    if failure is not None:
        raise AccessKeyUnusable(config.url, held.key_id, attempts, failure, kept=KEPT)
    return {
        "id": held.key_id,
        "state": state,
        "action": action,
        "url": config.url,
        "bucket": request.buckets[0],
        "path": config.path,
        "secretName": name,
    }


def _converge(
    request: ClusterRequest,
    ctx: StepContext,
    client: NodeApiClient,
    held: access_key_custody.HeldKey,
    current: str,
    recorded: dict[str, Any],
) -> tuple[str, str]:
    """(`created`, `updated` or `unchanged`, the fingerprint of the external ID the key carries).

    The key then is the cluster's; during a rotation it may carry the pending ID already.
    """
    shown = client.get_access_key(held.key_id)
    if shown.status == 404:
        external_id = _external_id(request, ctx, current)
        client.hide.add(external_id)
        body = access_keys.create_body(held.key_id, held.secret, key_storage(request, ctx, external_id))
        created = client.create_access_key(body)
        if created.ok:
            return "created", current
        if created.status != 409:
            raise rejected(client, "CreateAccessKey", created)
        shown = client.get_access_key(held.key_id)  # a duplicate delivery created it first
    if not shown.ok:
        raise rejected(client, "GetAccessKey", shown)
    config = _config(request)
    differs = access_keys.differences(
        shown.data if isinstance(shown.data, dict) else {},
        bucket=request.buckets[0],
        path=config.path,
        endpoint=access_keys.s3_endpoint(ctx.partition, ctx.sessions.region),
        role_arn=Targets.of(request, ctx.partition).access_role_arn,
        external_id_fingerprint=current,
        fingerprints=ctx.fingerprints,
    )
    carried = recorded.get("externalIdFingerprint")
    written = recorded.get("id") == held.key_id and (
        carried == current or carried == _pending_fingerprint(request, ctx, recorded)
    )
    if not differs and written:
        return "unchanged", str(carried)
    return _rewrite(request, ctx, client, held, current), current


def _pending_fingerprint(request: ClusterRequest, ctx: StepContext, recorded: dict[str, Any]) -> str | None:
    """During a rotation the key already carries the pending ID: that is not stale (only read when needed)."""
    if not recorded.get("externalIdFingerprint"):
        return None
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    pending = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), name, PENDING)
    return ctx.fingerprints.of(pending[1]) if pending else None


def _rewrite(
    request: ClusterRequest, ctx: StepContext, client: NodeApiClient, held: access_key_custody.HeldKey, current: str
) -> str:
    """PUT the whole storage block again; only into a key our secret opens (never somebody else's)."""
    proof = client.key_self(held.key_id, held.secret)
    if not proof.ok:
        raise rejected(client, "UpdateAccessKey", proof, why="the key with this id does not open with our secret")
    external_id = _external_id(request, ctx, current)
    client.hide.add(external_id)
    updated = client.update_access_key(held.key_id, access_keys.update_body(key_storage(request, ctx, external_id)))
    if not updated.ok:
        raise rejected(client, "UpdateAccessKey", updated)
    return "updated"


def rejected(client: NodeApiClient, operation: str, answer: Answer, why: str = "") -> AccessKeyRejected:
    text = answer.describe(client.secrets) + (f" ({why})" if why else "")
    return AccessKeyRejected(client.url, operation, answer.status, text, kept=KEPT)


def prove(
    client: NodeApiClient,
    key_id: str,
    key_secret: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    remaining_ms: Callable[[], int] | None = None,
    path: str = "/",
    attempts: int = BROWSE_ATTEMPTS,
) -> tuple[int, str | None]:
    """(attempts, None) once a browse through the key succeeds, or (attempts, the last answer).

    Retried while IAM may still be propagating, never beyond the Lambda's remaining time;
    a key the Node API refuses outright (401, 404) is not retried.
    """
    attempt, last = 0, "not tried"
    for delay in [*browse_delays(attempts), None]:
        attempt += 1
        try:
            answer = client.browse(key_id, key_secret, path)
        except NodeApiUnavailable as exc:
            last = exc.reason
        else:
            if answer.ok:
                return attempt, None
            last = answer.describe(client.secrets)
            if answer.status in KEY_REFUSED:
                return attempt, last
        if delay is None or (remaining_ms is not None and remaining_ms() < (delay + 2 * TIMEOUT_SECONDS) * 1000):
            return attempt, last
        sleep(delay)
    return attempt, last


def delete_access_key(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Delete the key this project created for the cluster (the registry's), then its secret.

    A key the registry does not record as ours is left alone; one already gone is done; one
    that no longer opens with our secret is somebody else's now and stays.
    """
    dynamodb, secrets = ctx.sessions.local_client("dynamodb"), ctx.sessions.local_client("secretsmanager")
    entry = registry.get(dynamodb, ctx.registry_table, request.cluster_id) or {}
    recorded = entry.get("accessKey") or {}
    if not recorded.get("createdByUs") or not recorded.get("id"):
        return {"action": "unchanged", "reason": "no access key created by atc-xaccount"}
    config = _config(request)
    name = access_key_custody.key_secret_name(ctx.secret_prefix, request.cluster_id)
    held = access_key_custody.read_key(secrets, name)
    client = node_api_client(NodeApiConfig(str(recorded.get("url") or config.url), config.credentials_secret_arn), ctx)
    key_id = str(recorded["id"])
    result = {"id": key_id, "url": client.url}
    if ctx.dry_run:
        return {**result, "action": "deleted", "applied": False}
    if held is not None and held.key_id == key_id:
        client.hide.add(held.secret)
        mine = client.key_self(key_id, held.secret)
        if mine.status == 401:
            return {**result, "action": "unchanged", "reason": "the key no longer opens with our secret: not ours"}
    answer = client.delete_access_key(key_id)
    if not answer.ok and answer.status != 404:
        raise rejected(client, "DeleteAccessKey", answer)
    access_key_custody.delete_key(secrets, name)
    access_key_custody.set_registry_record(dynamodb, ctx.registry_table, request.cluster_id, None)
    if not answer.ok:
        return {**result, "action": "unchanged", "reason": "already gone"}
    return {**result, "action": "deleted"}
