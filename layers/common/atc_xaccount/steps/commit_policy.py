"""Group commit, the cluster manager account's side: one write of the assume policy (and one
attachment per node role) for every queued intent (steps/commit.py takes the lock and the queue).
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import analyzer, iam_ops, locks, provenance, users
from atc_xaccount.assume_policy import OWNED_SID, merge_assume_policy, owned_resources
from atc_xaccount.documents import same_document
from atc_xaccount.errors import AtcXaccountError, IamPropagationDelay, PrerequisiteMissing
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.checks import check_policy_quota, guard_assume_policy, lint, owned_statements
from atc_xaccount.steps.compensate import undo_policy_change_or_raise
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import fenced_policy_state, policy_state_hash

Served = tuple[dict[str, dict[str, Any]], str | None, list[dict[str, Any]]]


def served_error(exc: AtcXaccountError) -> dict[str, Any]:
    data = exc.to_dict()
    return {"error": {k: str(v) for k, v in data.items() if k in ("error", "message", "account")}}


def serve_policy(
    request: ClusterRequest,
    ctx: StepContext,
    batch: list[tuple[str, dict[str, Any]]],
    raised: dict[str, AtcXaccountError],
) -> Served:
    """One write of the assume policy (and one attachment per node role) for every queued intent."""
    cm, name, owner = request.cluster_manager_account_id, request.assume_policy_name, ctx.execution or ""
    arn = Targets.of(request, ctx.partition).assume_policy_arn
    iam = ctx.sessions.client("iam", cm)
    current = fenced_policy_state(ctx, request, iam, arn, with_versions=True)
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
            served[cluster], raised[cluster] = {**served_error(exc), "leader": owner}, exc
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
            failed = {**served_error(exc), "leader": owner}
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
            served[cluster].update(served_error(outcome))
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
    undo_policy_change_or_raise(request, ctx, record, delay, f"{arn} keeps this step's created change")
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


def policy_change(request: ClusterRequest, ctx: StepContext, part: dict[str, Any]) -> dict[str, Any]:
    """This cluster's assume policy and attachment records, with the policy as IAM holds it now."""
    if part.get("solo"):
        left = locks.policy_hash(part["record"].get("afterVersion"), part["record"]["after"])
        return {"assumePolicy": part["record"], "attach": part["attachRecord"], "hash": left}
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", cm)
    state = fenced_policy_state(ctx, request, iam, targets.assume_policy_arn)
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
