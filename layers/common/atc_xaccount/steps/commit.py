"""Group commit: converge by document, not by cluster (issue 18 item 1, docs/converge.md).

An onboarding whose changes are pure additions queues its intent on each shared document
it must change (the cluster manager account's assume policy, the S3 account's trust
policy) and tries that document's lock. The holder serves every pending intent, oldest
first, in one write: each addition is checked exactly as preflight checked it alone
(owned statements, never widen, quota), the result is linted once, and the transaction
that releases the lock leaves each served cluster its result. An execution still queued
raises CommitPending and the state machine asks again a second later. A lock is held for
one invocation, never through the propagation wait.

Each cluster's change record says what the commit added *for it* (`grouped`): its undo
removes exactly that (`steps/group_undo.py`), whatever else the same write added.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atc_xaccount import analyzer, external_ids, iam_ops, locks, queue, users
from atc_xaccount.bulk import tag_of
from atc_xaccount.documents import non_whitespace_size, same_document
from atc_xaccount.errors import (
    AtcXaccountError,
    CommitPending,
    ExternalIdSecretMismatch,
    GroupCommitFailed,
    PrerequisiteMissing,
    ResourceLocked,
)
from atc_xaccount.extid import generate_external_id
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.checks import (
    check_trust_quota,
    guard_trust,
    lint,
    owned_statements,
    trust_quota,
    trust_resource,
)
from atc_xaccount.steps.commit_policy import Served, policy_change, serve_policy, served_error
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import fenced, policy_key, prior_of, trust_hash, trust_key
from atc_xaccount.trust import grant_sid, merge_trust_grant

#: Preflight's changes a group commit makes (anything else takes the locked path).
GROUPED = frozenset({"externalId", "assumePolicy", "attach", "trust"})
#: Changes the cluster manager account's commit makes.
POLICY_CHANGES = frozenset({"assumePolicy", "attach"})


def groupable(needed: list[str], plan: dict[str, Any]) -> bool:
    """Pure additions that include a trust grant: no external ID being replaced (that write
    also withdraws one). A change of the assume policy alone takes the locked path."""
    return "trust" in needed and set(needed) <= GROUPED and not plan["externalId"]["replacing"]


def commit_policy(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> dict[str, Any]:
    """EnsureAssumePolicy on the grouped path: this cluster's access role in the assume policy
    and the policy on its node role, written by this execution or whichever holds the lock."""
    key = policy_key(request)
    intent = {"execution": ctx.execution or "", "request": stored_request(request)}
    raised: dict[str, AtcXaccountError] = {}
    part = _take(ctx, key, request, intent, lambda batch: serve_policy(request, ctx, batch, raised))
    if part is None:
        raise CommitPending([key])
    if part.get("error"):
        # This execution wrote it: its own error, as the locked path raises it; else the writer's.
        raise raised.get(request.cluster_id) or GroupCommitFailed(key, part["error"])
    change = policy_change(request, ctx, part)
    queue.forget_result(ctx.sessions.local_client("dynamodb"), ctx.locks_table, key, request.cluster_id)
    return change


def commit_trust(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> dict[str, Any]:
    """MergeTrust on the grouped path: the cluster's external ID stored (its secret is what the
    holder reads), then its grant in the trust policy, written by whichever holds the lock."""
    key = trust_key(request)
    secret, external_id = own_external_id(request, ctx, plan)
    intent = {
        "execution": ctx.execution or "",
        "request": stored_request(request),
        "secretCreated": secret["action"] == "created",
        # The ID preflight planned: the holder grants a queued cluster only that ID.
        "fingerprint": ctx.fingerprints.of(external_id),
    }
    raised: dict[str, AtcXaccountError] = {}
    part = _take(ctx, key, request, intent, lambda batch: _serve_trust(request, ctx, batch, raised, external_id))
    if part is None:
        raise CommitPending([key])
    if part.get("error"):
        raise raised.get(request.cluster_id) or GroupCommitFailed(key, part["error"])
    if part.get("secretCreated"):
        secret = {**secret, "action": "created", "generated": request.external_id is None}
    change = _trust_change(request, ctx, part, external_id, secret)
    queue.forget_result(ctx.sessions.local_client("dynamodb"), ctx.locks_table, key, request.cluster_id)
    return change


def stored_request(request: ClusterRequest) -> dict[str, Any]:
    """What the queue keeps of a request: never the external ID (its secret is its only copy)."""
    return {k: v for k, v in request.to_dict().items() if k != "externalId"}


def own_external_id(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(secret record, the ID): stored before the intent is queued, since the holder reads it."""
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    stored = external_ids.read_external_id(secrets, name) if not plan["externalId"]["stored"] else None
    if not plan["externalId"]["stored"] and stored is None:  # not yet: an earlier attempt may have stored it
        value = request.external_id or generate_external_id()
        created = external_ids.create_external_id(secrets, name=name, cluster_id=request.cluster_id, value=value)
        if created is not None:
            return {**created, "generated": request.external_id is None}, value
    arn, value = stored or external_ids.require_external_id(secrets, name)
    expected = plan["externalId"].get("fingerprint")
    if expected and not ctx.fingerprints.matches(expected, value):
        raise ExternalIdSecretMismatch(request.cluster_id, name, "the secret changed since preflight")
    # Validate created the secret with the ID the event gave: this execution's to undo.
    action = "created" if request.requested_created else "unchanged"
    return {"secretName": name, "secretArn": arn, "generated": False, "action": action, "applied": True}, value


def _take(
    ctx: StepContext,
    key: str,
    request: ClusterRequest,
    intent: dict[str, Any],
    serve: Callable[[list[tuple[str, dict[str, Any]]]], Served],
) -> dict[str, Any] | None:
    """This cluster's result on document `key`: served before, served now by us, or None (queued)."""
    dynamodb, table, cluster = ctx.sessions.local_client("dynamodb"), ctx.locks_table, request.cluster_id
    owner = ctx.execution or ""
    pending, results = queue.read(dynamodb, table, key)
    if (results.get(cluster) or {}).get("execution") == owner:
        return dict(results[cluster])
    queued = dict(pending).get(cluster)
    if queued is None or queued.get("execution") != owner:
        queue.enqueue(dynamodb, table, key, cluster, intent, replace=queued is not None)
    try:
        locks.acquire(dynamodb, table, [key], owner, lease_seconds=queue.LEASE_SECONDS)
    except ResourceLocked:
        return None
    try:
        pending, results = queue.read(dynamodb, table, key)
        mine = results.get(cluster) or {}
        # A bulk's reservations are served by its own rows' commits only (docs/converge.md).
        batch, expired = queue.servable(pending, tag_of(owner), queue.now_ms())
        batch = batch[: queue.BATCH]
        if mine.get("execution") == owner or not batch:
            dropped = [queue.served_item(table, key, {}, expired)] if expired else []
            locks.release(dynamodb, table, [key], owner, also=dropped)
            return dict(mine) if mine.get("execution") == owner else None
        served, left, also = serve(batch)
    except Exception:
        locks.release(dynamodb, table, [key], owner)  # then raised as it was
        raise
    for queued_cluster, queued_intent in batch:
        if queued_cluster in served:  # the others stay queued
            served[queued_cluster]["execution"] = queued_intent.get("execution")
    hashes = {key: left} if left else None
    answered = [queue.served_item(table, key, served, expired)] if served or expired else []
    written = {key: prior_of(ctx, key)} if hashes else None
    locks.release(dynamodb, table, [key], owner, hashes=hashes, also=[*answered, *also], written=written)
    result = served.get(cluster)
    return result if result and result.get("execution") == owner else None


def _secret_values(ctx: StepContext, clusters: list[str]) -> dict[str, str | None]:
    """Each queued cluster's external ID, read at once (the holder needs them all)."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    secrets = ctx.sessions.local_client("secretsmanager")

    def reader(cluster: str) -> Callable[[], str | None]:
        name = external_ids.secret_name(ctx.secret_prefix, cluster)
        return lambda: (external_ids.read_external_id(secrets, name) or (None, None))[1]

    if not clusters:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(clusters)), thread_name_prefix="commit") as pool:
        futures = [pool.submit(contextvars.copy_context().run, reader(c)) for c in clusters]
    return {cluster: future.result() for cluster, future in zip(clusters, futures, strict=True)}


def _serve_trust(
    request: ClusterRequest,
    ctx: StepContext,
    batch: list[tuple[str, dict[str, Any]]],
    raised: dict[str, AtcXaccountError],
    own_id: str,
) -> Served:
    """One write of the access role's trust policy for every queued grant that fits."""
    s3, role_name, owner = request.s3_account_id, request.access_role_name, ctx.execution or ""
    iam = ctx.sessions.client("iam", s3)
    role = fenced(ctx, trust_key(request), lambda: iam_ops.get_role(iam, s3, role_name), trust_hash)
    if role is None:
        raise PrerequisiteMissing("role", role_name, s3)
    before = role["AssumeRolePolicyDocument"]
    ids = _secret_values(ctx, [cluster for cluster, _ in batch if cluster != request.cluster_id])
    ids[request.cluster_id] = own_id
    doc, quota, owned = before, 0, set()
    served: dict[str, dict[str, Any]] = {}
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for cluster, intent in batch:
        queued = ClusterRequest.from_dict(intent["request"])
        targets = Targets.of(queued, ctx.partition)
        external_id = ids[cluster]
        try:
            name = external_ids.secret_name(ctx.secret_prefix, cluster)
            if external_id is None:
                raise PrerequisiteMissing("secret", name, "automation")
            planned = intent.get("fingerprint")
            if planned and not ctx.fingerprints.matches(planned, external_id):
                # A secret written since that cluster's preflight is never granted.
                raise ExternalIdSecretMismatch(cluster, name, "the secret changed since preflight")
            with owned_statements(s3, trust_resource(role_name)):
                merged, changed = merge_trust_grant(doc, targets.node_role_arn, external_id)
            if changed:
                pair = (targets.node_role_arn, external_id)
                guard_trust(doc, merged, targets.node_role_arn, {pair}, s3, role_name)
                size = non_whitespace_size(merged)
                quota = quota if size <= quota else trust_quota(iam, s3, size)
                check_trust_quota(merged, quota, role_name, s3)
        except AtcXaccountError as exc:
            served[cluster], raised[cluster] = {**served_error(exc), "leader": owner}, exc
            continue
        doc = merged
        owned.add(grant_sid(targets.node_role_arn))
        served[cluster] = {
            "leader": owner,
            "added": changed,
            "fingerprint": ctx.fingerprints.of(external_id),
            "secretCreated": bool(intent.get("secretCreated")),
        }
        entry = users.user_entry(
            {
                "nodeRoleArn": targets.node_role_arn,
                "accessRoleArn": targets.access_role_arn,
                "assumePolicyArn": targets.assume_policy_arn,
                "externalIdFingerprint": ctx.fingerprints.of(external_id),
            }
        )
        entries.setdefault(queued.cluster_manager_account_id, {})[cluster] = entry
    left = locks.document_hash(doc)
    if not same_document(before, doc):
        try:
            lint(ctx, doc, analyzer.TRUST, owned, f"trust policy of {role_name}", s3)
        except AtcXaccountError as exc:
            failed = {**served_error(exc), "leader": owner}
            raised.update({cluster: exc for cluster, _ in batch})
            return {cluster: dict(failed) for cluster, _ in batch}, None, []
    # The lock's release (its transaction) records what this write left.
    record = iam_ops.write_trust_policy(
        iam, s3, role_name=role_name, before=before, after=doc, fingerprints=ctx.fingerprints
    )
    ok = [cluster for cluster, result in served.items() if "error" not in result]
    for cluster in ok:
        served[cluster]["hash"] = left
    if len(ok) == 1:
        # This write is one cluster's alone: its record is the classic one (exact restore).
        only = served[ok[0]]
        queued_request = ClusterRequest.from_dict(dict(batch)[ok[0]]["request"])
        only["solo"] = True
        only["record"] = {
            **record,
            "principal": Targets.of(queued_request, ctx.partition).node_role_arn,
            "externalIdAdded": only["added"],
            "externalIdWithdrawn": False,
            "externalIdFingerprint": only["fingerprint"],
            "hash": left,
        }
    also = [users.add_items(ctx.registry_table, cm, kept, keep_existing=True) for cm, kept in sorted(entries.items())]
    return served, left, also


def _trust_change(
    request: ClusterRequest,
    ctx: StepContext,
    part: dict[str, Any] | None,
    external_id: str,
    secret: dict[str, Any],
) -> dict[str, Any]:
    """This cluster's trust change record, with the policy IAM holds now (read fenced)."""
    if part and part.get("solo"):
        return {**part["record"], "externalId": secret}
    s3 = request.s3_account_id
    iam = ctx.sessions.client("iam", s3)
    role = fenced(ctx, trust_key(request), lambda: iam_ops.get_role(iam, s3, request.access_role_name), trust_hash)
    if role is None:
        raise PrerequisiteMissing("role", request.access_role_name, s3)
    after = role["AssumeRolePolicyDocument"]
    added = bool(part and part.get("added"))
    return {
        "account": s3,
        "roleName": request.access_role_name,
        "before": None,
        "after": ctx.fingerprints.redact(after),
        "applied": True,
        "action": "updated" if added else "unchanged",
        "size": non_whitespace_size(after),
        "principal": Targets.of(request, ctx.partition).node_role_arn,
        "externalIdAdded": added,
        "externalIdWithdrawn": False,
        "externalIdFingerprint": ctx.fingerprints.of(external_id),
        "hash": locks.document_hash(after),
        "grouped": True,
        "committedBy": (part or {}).get("leader"),
        "externalId": secret,
    }
