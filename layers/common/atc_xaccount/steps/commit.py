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

from atc_xaccount import analyzer, external_ids, iam_ops, locks, provenance, queue, users
from atc_xaccount.assume_policy import OWNED_SID, merge_assume_policy, owned_resources
from atc_xaccount.documents import non_whitespace_size, same_document
from atc_xaccount.errors import (
    AtcXaccountError,
    CommitPending,
    ExternalIdSecretMismatch,
    GroupCommitFailed,
    IamPropagationDelay,
    PrerequisiteMissing,
    ResourceLocked,
    UndoIncomplete,
)
from atc_xaccount.extid import generate_external_id
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.checks import (
    check_policy_quota,
    check_trust_quota,
    guard_assume_policy,
    guard_trust,
    lint,
    owned_statements,
    trust_quota,
    trust_resource,
)
from atc_xaccount.steps.compensate import undo_policy_change
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import fenced, policy_key, policy_state_hash, prior_of, trust_hash, trust_key
from atc_xaccount.trust import grant_sid, merge_trust_grant

#: Preflight's changes a group commit makes (anything else takes the locked path).
GROUPED = frozenset({"externalId", "assumePolicy", "attach", "trust"})
#: Changes the cluster manager account's commit makes.
POLICY_CHANGES = frozenset({"assumePolicy", "attach"})

Served = tuple[dict[str, dict[str, Any]], str | None, list[dict[str, Any]]]


def groupable(needed: list[str], plan: dict[str, Any]) -> bool:
    """Pure additions that include a trust grant: no external ID being replaced (that write
    also withdraws one). A change of the assume policy alone takes the locked path."""
    return "trust" in needed and set(needed) <= GROUPED and not plan["externalId"]["replacing"]


def commit_policy(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> dict[str, Any]:
    """EnsureAssumePolicy on the grouped path: this cluster's access role in the assume policy
    and the policy on its node role, written by this execution or whichever holds the lock."""
    key = policy_key(request)
    intent = {"execution": ctx.execution or "", "request": _stored_request(request)}
    raised: dict[str, AtcXaccountError] = {}
    part = _take(ctx, key, request, intent, lambda batch: _serve_policy(request, ctx, batch, raised))
    if part is None:
        raise CommitPending([key])
    if part.get("error"):
        # This execution wrote it: its own error, as the locked path raises it; else the writer's.
        raise raised.get(request.cluster_id) or GroupCommitFailed(key, part["error"])
    change = _policy_change(request, ctx, part)
    queue.forget_result(ctx.sessions.local_client("dynamodb"), ctx.locks_table, key, request.cluster_id)
    return change


def commit_trust(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> dict[str, Any]:
    """MergeTrust on the grouped path: the cluster's external ID stored (its secret is what the
    holder reads), then its grant in the trust policy, written by whichever holds the lock."""
    key = trust_key(request)
    secret, external_id = _own_external_id(request, ctx, plan)
    intent = {
        "execution": ctx.execution or "",
        "request": _stored_request(request),
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


def _stored_request(request: ClusterRequest) -> dict[str, Any]:
    """What the queue keeps of a request: never the external ID (its secret is its only copy)."""
    return {k: v for k, v in request.to_dict().items() if k != "externalId"}


def _own_external_id(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
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
        if mine.get("execution") == owner or not pending:
            locks.release(dynamodb, table, [key], owner)
            return dict(mine) if mine.get("execution") == owner else None
        batch = pending[: queue.BATCH]
        served, left, also = serve(batch)
    except Exception:
        locks.release(dynamodb, table, [key], owner)  # then raised as it was
        raise
    for queued_cluster, queued_intent in batch:
        if queued_cluster in served:  # the others stay queued
            served[queued_cluster]["execution"] = queued_intent.get("execution")
    hashes = {key: left} if left else None
    answered = [queue.served_item(table, key, served)] if served else []
    written = {key: prior_of(ctx, key)} if hashes else None
    locks.release(dynamodb, table, [key], owner, hashes=hashes, also=[*answered, *also], written=written)
    result = served.get(cluster)
    return result if result and result.get("execution") == owner else None


def _error(exc: AtcXaccountError) -> dict[str, Any]:
    data = exc.to_dict()
    return {"error": {k: str(v) for k, v in data.items() if k in ("error", "message", "account")}}


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
            served[cluster], raised[cluster] = {**_error(exc), "leader": owner}, exc
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
            failed = {**_error(exc), "leader": owner}
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


def _serve_policy(
    request: ClusterRequest,
    ctx: StepContext,
    batch: list[tuple[str, dict[str, Any]]],
    raised: dict[str, AtcXaccountError],
) -> Served:
    """One write of the assume policy (and one attachment per node role) for every queued intent."""
    cm, name, owner = request.cluster_manager_account_id, request.assume_policy_name, ctx.execution or ""
    arn = Targets.of(request, ctx.partition).assume_policy_arn
    iam = ctx.sessions.client("iam", cm)
    current = fenced(
        ctx,
        policy_key(request),
        lambda: iam_ops.get_policy_state(iam, cm, arn, with_versions=True),
        policy_state_hash,
    )
    before = current.document if current else None
    doc = before
    served: dict[str, dict[str, Any]] = {}
    queued: dict[str, ClusterRequest] = {}
    for cluster, intent in batch:
        wanted = ClusterRequest.from_dict(intent["request"])
        resource = Targets.of(wanted, ctx.partition).access_role_arn
        try:
            with owned_statements(cm, f"policy {name}"):
                merged, changed = merge_assume_policy(doc, resource)
            if changed:
                guard_assume_policy(doc, merged, {resource}, cm, name)
                check_policy_quota(merged, name, cm)
        except AtcXaccountError as exc:
            served[cluster], raised[cluster] = {**_error(exc), "leader": owner}, exc
            continue
        doc = merged
        queued[cluster] = wanted
        served[cluster] = {
            "leader": owner,
            "resourceAdded": changed,
            "secretCreated": bool(intent.get("secretCreated")),
        }
    if doc is None:  # every intent refused: nothing to write
        return served, None, []
    if current is None or not same_document(before, doc):
        try:
            lint(ctx, doc, analyzer.IDENTITY, {OWNED_SID}, name, cm)
        except AtcXaccountError as exc:
            failed = {**_error(exc), "leader": owner}
            raised.update({cluster: exc for cluster, _ in batch})
            return {cluster: dict(failed) for cluster, _ in batch}, None, []
    record = iam_ops.write_managed_policy(iam, cm, name=name, arn=arn, current=current, desired=doc)
    version = record["afterVersion"]
    attached = _attach_each(iam, cm, arn, sorted({q.node_role_name for q in queued.values()}), current is None)
    if current is None:
        _undo_if_not_attachable_yet(request, ctx, iam, arn, record, attached)
    solo = len(queued) == 1
    for cluster, wanted in queued.items():
        outcome = attached[wanted.node_role_name.lower()]
        served[cluster].update(
            attached=outcome == "attached",
            created=current is None,
            afterVersion=version,
            hash=locks.policy_hash(version, doc),
        )
        if solo:  # this write is one cluster's alone: the classic records (exact restore)
            served[cluster].update(solo=True, record=record, attachRecord=_attach_record(cm, wanted, arn, outcome))
        if isinstance(outcome, AtcXaccountError):
            served[cluster].update(_error(outcome))
            raised[cluster] = outcome
    for cluster in [c for c in queued if c != request.cluster_id and c in raised]:
        # A shared call failed (the node role's attachment): the writer fails with it; the
        # others stay queued for the next writer, as if this write had not served them.
        del served[cluster], queued[cluster]
    also: list[dict[str, Any]] = []
    facts = {provenance.CREATED_BY_US: current is None}
    for wanted in queued.values() if not solo else ():  # solo: Record keeps it, from the records
        resource = Targets.of(wanted, ctx.partition).access_role_arn
        facts[provenance.resource_before(resource)] = resource in owned_resources(before) if before else False
        facts[provenance.attached_before(wanted.node_role_name)] = (
            attached[wanted.node_role_name.lower()] == "unchanged"
        )
    if not solo:
        also.append(provenance.provenance_item(ctx.registry_table, provenance.provenance_key(cm, name), facts))
    entries = {
        cluster: users.user_entry(
            {
                "nodeRoleArn": Targets.of(wanted, ctx.partition).node_role_arn,
                "accessRoleArn": Targets.of(wanted, ctx.partition).access_role_arn,
                "assumePolicyArn": arn,
            }
        )
        for cluster, wanted in queued.items()
        if "error" not in served[cluster]
    }
    if entries:
        also.append(users.add_items(ctx.registry_table, cm, entries, keep_existing=True))
    return served, locks.policy_hash(version, doc), also


def _undo_if_not_attachable_yet(
    request: ClusterRequest,
    ctx: StepContext,
    iam: Any,
    arn: str,
    record: dict[str, Any],
    attached: dict[str, str | AtcXaccountError],
) -> None:
    """A policy this write created that IAM will not attach yet (eventual consistency): undo
    the whole write, as the locked path does, and raise IamPropagationDelay so the state
    machine retries later; every queued intent stays queued for that retry or another writer
    (the write that served nobody is not recorded as served)."""
    delay = next((o for o in attached.values() if isinstance(o, IamPropagationDelay)), None)
    if delay is None:
        return
    cm = request.cluster_manager_account_id
    for role_name, outcome in attached.items():
        if outcome == "attached":
            iam_ops.ensure_detached(iam, cm, role_name=role_name, policy_arn=arn)
    undone = undo_policy_change(request, ctx, record)
    if undone["result"] == "failed":
        what = f"{arn} keeps this step's created change"
        raise UndoIncomplete(
            f"{delay}; undoing the assume policy failed too: {undone['error'].get('message')}",
            [{"change": "assumePolicy", "what": what, **record}],
            account=cm,
        ) from delay
    raise delay


def _attach_record(cm: str, wanted: ClusterRequest, arn: str, outcome: str | AtcXaccountError) -> dict[str, Any]:
    """As iam_ops.ensure_attached records it."""
    return {
        "account": cm,
        "roleName": wanted.node_role_name,
        "policyArn": arn,
        "before": outcome == "unchanged",
        "after": outcome in ("attached", "unchanged"),
        "applied": True,
        "action": "attached" if outcome == "attached" else "unchanged",
    }


def _attach_each(
    iam: Any, cm: str, arn: str, node_roles: list[str], just_created: bool
) -> dict[str, str | AtcXaccountError]:
    """Attach the policy to each node role that lacks it: 'attached', 'unchanged' or the error."""
    outcome: dict[str, str | AtcXaccountError] = {}
    for role_name in node_roles:
        try:
            before = not just_created and arn in iam_ops.attached_policy_arns(iam, cm, role_name)
            if not before:
                iam_ops.attach(iam, cm, role_name=role_name, policy_arn=arn, needed=True, just_created=just_created)
            outcome[role_name.lower()] = "unchanged" if before else "attached"
        except AtcXaccountError as exc:
            outcome[role_name.lower()] = exc
    return outcome


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


def _policy_change(request: ClusterRequest, ctx: StepContext, part: dict[str, Any]) -> dict[str, Any]:
    """This cluster's assume policy and attachment records, with the policy as IAM holds it now."""
    if part.get("solo"):
        left = locks.policy_hash(part["record"].get("afterVersion"), part["record"]["after"])
        return {"assumePolicy": part["record"], "attach": part["attachRecord"], "hash": left}
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", cm)
    state = fenced(
        ctx,
        policy_key(request),
        lambda: iam_ops.get_policy_state(iam, cm, targets.assume_policy_arn),
        policy_state_hash,
    )
    if state is None:
        raise PrerequisiteMissing("policy", request.assume_policy_name, cm)
    added = bool(part.get("resourceAdded"))
    action = ("created" if part.get("created") else "versioned") if added else "unchanged"
    policy = {
        "account": cm,
        "policyArn": targets.assume_policy_arn,
        "before": None,
        "after": state.document,
        "beforeVersion": None,
        "afterVersion": state.default_version,
        "retiredVersion": None,
        "applied": True,
        "action": action,
        "grouped": True,
        "committedBy": part.get("leader"),
    }
    attach = {
        "account": cm,
        "roleName": request.node_role_name,
        "policyArn": targets.assume_policy_arn,
        "before": not part.get("attached"),
        "after": True,
        "applied": True,
        "action": "attached" if part.get("attached") else "unchanged",
        "grouped": True,
        "policyChanged": added,
    }
    return {"assumePolicy": policy, "attach": attach, "hash": policy_state_hash(state)}
