"""The last link of the chain, from the consumer's side: the access key on the cluster's Node API.

The `chain` links judge the documents of both accounts; this one asks the cluster: the
key this project created (the registry's `accessKey`) still exists, its storage names the
cluster's bucket and path through the access role, it carries the external ID whose
fingerprint the registry recorded, and a browse through the key lists the bucket (the
node assumed the role with the key's external ID). `observe` reads (the doctor's only
Node API calls, all reads), `consumer_link` judges (pure).

What a GET cannot show: the 4.4.6 schema answers with `accessKeyStorageResponse`, without
`credentials`. When a Node API shows them anyway, the role and the external ID (by
fingerprint) are compared too; otherwise the registry's fingerprint of what was written
stands for the external ID, and the browse proves the role admits it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from atc_xaccount import access_key_custody, access_keys, external_ids, registry
from atc_xaccount.chain import BROKEN, OK, UNDECIDABLE, Link
from atc_xaccount.errors import AtcXaccountError, NodeApiCredentialsInvalid, NodeApiUnavailable
from atc_xaccount.model import ClusterRequest
from atc_xaccount.node_api import NodeApiClient, read_node_user
from atc_xaccount.redact import fingerprint
from atc_xaccount.steps.context import StepContext, Targets

LINK = "consumer"
REDELIVER = "deliver the cluster's registration event again: EnsureAccessKey creates or updates the key"


@dataclass(frozen=True)
class Observation:
    """What the doctor saw of the cluster's access key; `unreachable` when it could not ask."""

    url: str
    bucket: str
    path: str
    key_id: str | None = None
    registered: bool = True
    unreachable: str | None = None
    refused: str | None = None
    missing: bool = False
    differences: tuple[str, ...] = ()
    stale_external_id: bool = False
    browse: str | None = None
    browsed: int | None = None


def observe(ctx: StepContext, request: ClusterRequest) -> Observation:
    """Read the registry's key record, the key on the Node API, and browse through the key."""
    config = request.node_api
    assert config is not None
    bucket, path = request.buckets[0] if request.buckets else "", config.path
    base = Observation(url=config.url, bucket=bucket, path=path)
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id)
    recorded = (entry or {}).get(access_key_custody.ACCESS_KEY) or {}
    if not recorded.get("id"):
        return replace(base, registered=entry is not None)
    secrets = ctx.sessions.local_client("secretsmanager")
    key_id = str(recorded["id"])
    try:
        # What the doctor's own credentials may not read is unknown here, not broken.
        username, password = read_node_user(secrets, config.credentials_secret_arn, config.url)
        held = access_key_custody.read_key(
            secrets, access_key_custody.key_secret_name(ctx.secret_prefix, request.cluster_id)
        )
    except AtcXaccountError as exc:
        return replace(base, key_id=key_id, unreachable=f"cannot read the secrets from here: {exc}")
    try:
        client = NodeApiClient(config.url, username, password, secret_arn=config.credentials_secret_arn)
        if held is not None:
            client.hide.add(held.secret)
        shown = client.get_access_key(key_id)
        if shown.status == 404:
            return replace(base, key_id=key_id, missing=True)
        if not shown.ok:
            return replace(base, key_id=key_id, refused=shown.describe(client.secrets))
        differences = access_keys.differences(
            shown.data if isinstance(shown.data, dict) else {},
            bucket=bucket,
            path=path,
            endpoint=access_keys.s3_endpoint(ctx.partition, ctx.sessions.region),
            role_arn=Targets.of(request, ctx.partition).access_role_arn,
            external_id_fingerprint=str((entry or {}).get("externalIdFingerprint")),
        )
        stale = _stale(ctx, request, recorded.get("externalIdFingerprint"), (entry or {}).get("externalIdFingerprint"))
        if held is None or held.key_id != key_id:
            return replace(
                base, key_id=key_id, differences=tuple(differences), stale_external_id=stale, browse="no secret"
            )
        answer = client.browse(key_id, held.secret)
    except NodeApiUnavailable as exc:
        return replace(base, key_id=key_id, unreachable=exc.reason)
    except NodeApiCredentialsInvalid as exc:
        return replace(base, key_id=key_id, refused=exc.reason)
    items = answer.data.get("items") if answer.ok and isinstance(answer.data, dict) else None
    return replace(
        base,
        key_id=key_id,
        differences=tuple(differences),
        stale_external_id=stale,
        browse=None if answer.ok else answer.describe(client.secrets),
        browsed=len(items) if isinstance(items, list) else None,
    )


def _stale(ctx: StepContext, request: ClusterRequest, carried: object, current: object) -> bool:
    """Written with another ID than the registry's, and not the pending one of a rotation under way."""
    if carried == current:
        return False
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    pending = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), name, "AWSPENDING")
    return pending is None or fingerprint(pending[1]) != carried


def consumer_link(seen: Observation) -> Link:
    """ok, broken (with what to do) or undecidable (the doctor could not ask the cluster)."""
    where = f"s3://{seen.bucket}/{seen.path.strip('/')}".rstrip("/")
    claim = f"Cluster Manager's access key on {seen.url} browses {where}"
    if seen.key_id is None:
        if not seen.registered:
            return Link(LINK, claim, UNDECIDABLE, detail="the cluster is not registered: its key does not exist yet")
        return Link(LINK, claim, BROKEN, detail="no access key was created through the Node API", fix=REDELIVER)
    claim = f"Cluster Manager's access key {seen.key_id} on {seen.url} browses {where}"
    if seen.unreachable is not None:
        return Link(
            LINK,
            claim,
            UNDECIDABLE,
            detail=f"the key could not be checked from here: {seen.unreachable}",
            fix=(
                "run the doctor where the Node API is reachable (the cluster's VPC), with credentials that may read "
                "the node user's secret and the key's secret; or see the key in Cluster Manager"
            ),
        )
    if seen.refused is not None:
        return Link(
            LINK,
            claim,
            BROKEN,
            detail=f"the Node API refused to show the key: {seen.refused}",
            fix="the Node API user's secret must name a node user with the key_master ACL",
        )
    if seen.missing:
        return Link(LINK, claim, BROKEN, detail=f"the Node API has no access key {seen.key_id} any more", fix=REDELIVER)
    problems = list(seen.differences)
    if seen.stale_external_id:
        problems.append("the key was written with another external ID than the registry's (fingerprints differ)")
    if problems:
        return Link(LINK, claim, BROKEN, detail="; ".join(problems), fix=REDELIVER)
    if seen.browse == "no secret":
        return Link(
            LINK,
            claim,
            UNDECIDABLE,
            detail="the key's secret is not kept by atc-xaccount any more: no browse through it",
            fix=REDELIVER,
        )
    if seen.browse is not None:
        return Link(
            LINK,
            claim,
            BROKEN,
            detail=f"browsing through the key fails: {seen.browse}",
            fix=(
                "fix the first broken link above; if every other one is ok, the key's role or external ID is not "
                "what the trust policy admits (a GET does not show them): "
                + REDELIVER
                + ", and rewrites a key it cannot browse through"
            ),
        )
    listed = f": {seen.browsed} entr{'y' if seen.browsed == 1 else 'ies'}" if seen.browsed is not None else ""
    return Link(LINK, claim, OK, detail=f"browsed through the key{listed}")


def link_for(ctx: StepContext, request: ClusterRequest) -> Link | None:
    """The consumer link of a cluster with a Node API (None without one)."""
    if request.node_api is None:
        return None
    return consumer_link(observe(ctx, request))
