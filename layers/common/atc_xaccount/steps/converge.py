"""The three changes: the assume policy, its attachment to the node role, the trust grant.

Each step reads (or takes preflight's plan read under the lock), decides with the pure
policy functions and writes only on a difference; each returns its change record
(before/after) for Verify, Record and compensation.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import analyzer, external_ids, iam_ops, locks, staged_ids, users
from atc_xaccount.assume_policy import OWNED_SID, merge_assume_policy
from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import (
    AtcXaccountError,
    AwsOperationFailed,
    ExternalIdSecretMismatch,
    PrerequisiteMissing,
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
    policy_state_from_plan,
    trust_quota,
    trust_resource,
)
from atc_xaccount.steps.commit import commit_policy, commit_trust
from atc_xaccount.steps.compensate import undo_policy_change_or_raise
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import (
    fenced,
    fenced_policy_state,
    noted,
    policy_key,
    trust_hash,
    trust_key,
)
from atc_xaccount.trust import grant_external_ids, grant_sid, merge_trust_grant, remove_trust_grant


def resolve_external_id(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Store (or reuse) the cluster's external ID; only its secret's name and ARN travel on."""
    record = external_ids.ensure_external_id(
        ctx.sessions.local_client("secretsmanager"),
        name=external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        cluster_id=request.cluster_id,
        provided=request.external_id,
        dry_run=ctx.dry_run,
    )
    return record


def _stored_external_id(request: ClusterRequest, ctx: StepContext) -> tuple[str, str]:
    """(secret ARN, external ID) of the cluster; the secret is the only copy of the ID."""
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    return external_ids.require_external_id(ctx.sessions.local_client("secretsmanager"), name)


def _external_id(request: ClusterRequest, ctx: StepContext) -> str:
    return _stored_external_id(request, ctx)[1]


def ensure_assume_policy(
    request: ClusterRequest, ctx: StepContext, plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Create `atc-s3-assume-role`, or add the access role ARN as a new default version.

    With preflight's `plan` (read under the lock) nothing is read again.
    """
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", cm)
    if plan is None:
        current = fenced_policy_state(ctx, request, iam, targets.assume_policy_arn, with_versions=True)
    else:
        current = policy_state_from_plan(plan["policy"])
    with owned_statements(cm, f"policy {request.assume_policy_name}"):
        desired, changed = merge_assume_policy(current.document if current else None, targets.access_role_arn)
    if changed:
        guard_assume_policy(
            current.document if current else None, desired, {targets.access_role_arn}, cm, request.assume_policy_name
        )
        check_policy_quota(desired, request.assume_policy_name, cm)
        if plan is None:  # preflight linted this very document under the same lock
            lint(ctx, desired, analyzer.IDENTITY, {OWNED_SID}, request.assume_policy_name, cm)
    try:
        return iam_ops.write_managed_policy(
            iam,
            cm,
            name=request.assume_policy_name,
            arn=targets.assume_policy_arn,
            current=current,
            desired=desired,
            dry_run=ctx.dry_run,
        )
    except AwsOperationFailed as exc:
        if plan is None or exc.code != "EntityAlreadyExists":
            raise
        # A retried invocation whose first attempt created it: decide again from what IAM holds.
        return ensure_assume_policy(request, ctx)


def attach_policy(
    request: ClusterRequest, ctx: StepContext, needed: bool | None = None, *, just_created: bool = False
) -> dict[str, Any]:
    """Attach `atc-s3-assume-role` to the node role (already attached: no write).

    `needed` is preflight's answer; attaching is idempotent in IAM, so it needs no re-read.
    """
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    if needed is None:
        return iam_ops.ensure_attached(
            ctx.sessions.client("iam", cm),
            cm,
            role_name=request.node_role_name,
            policy_arn=targets.assume_policy_arn,
            dry_run=ctx.dry_run,
        )
    return iam_ops.attach(
        ctx.sessions.client("iam", cm) if needed and not ctx.dry_run else None,
        cm,
        role_name=request.node_role_name,
        policy_arn=targets.assume_policy_arn,
        needed=needed,
        dry_run=ctx.dry_run,
        just_created=just_created,
    )


def grant_assume_policy(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> dict[str, Any]:
    """The cluster manager account's two changes, in order: the policy, then its attachment.

    One step for both: each step assumes into its account, and these two share one.
    Returns both change records and the hash of the policy as this step leaves it.
    On the grouped path (`plan["grouped"]`) whoever holds the policy's lock writes it
    (`steps/commit.py`).
    """
    if plan.get("grouped") and plan.get("clusterManagerChange"):
        return commit_policy(request, ctx, plan)
    policy = ensure_assume_policy(request, ctx, plan)
    try:
        attach = attach_policy(request, ctx, plan["attachNeeded"], just_created=policy.get("action") == "created")
    except AtcXaccountError as failure:
        if policy.get("applied") and policy.get("action") != "unchanged":
            what = f"{policy['policyArn']} keeps this step's {policy['action']} change"
            undo_policy_change_or_raise(request, ctx, policy, failure, what)
        raise
    left = locks.policy_hash(policy.get("afterVersion"), policy["after"])
    if policy.get("action") not in (None, "unchanged"):
        noted(ctx, policy_key(request), left)
    return {"assumePolicy": policy, "attach": attach, "hash": left}


def merge_trust(
    request: ClusterRequest, ctx: StepContext, external_id: str | None = None, plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge the node role's external-ID grant into the access role's trust policy.

    `external_id` overrides the stored one (a plan before the ID exists, a rotation).
    With preflight's `plan` this step also stores the cluster's external ID (the secret is
    written right before the grant that uses it, and read no more than once); an ID the
    request gave was staged by Validate and is promoted only once the grant is written.
    """
    if plan is not None and plan.get("grouped") and external_id is None:
        return commit_trust(request, ctx, plan)
    s3 = request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    id_record, promote, previous = None, None, None
    if plan is not None and external_id is None:
        id_record, external_id, promote, previous = _external_id_to_grant(request, ctx, plan["externalId"])
    iam = ctx.sessions.client("iam", s3)
    role = fenced(ctx, trust_key(request), lambda: iam_ops.get_role(iam, s3, request.access_role_name), trust_hash)
    if role is None:
        raise PrerequisiteMissing("role", request.access_role_name, s3)
    before = role["AssumeRolePolicyDocument"]
    external_id = external_id or _external_id(request, ctx)
    with owned_statements(s3, trust_resource(request.access_role_name)):
        after, changed = merge_trust_grant(before, targets.node_role_arn, external_id)
        withdrawn = None
        if plan is None or plan["externalId"]["replacing"]:
            withdrawn = _replaced_external_id(request, ctx, after, targets.node_role_arn, external_id, previous)
        if withdrawn is not None:
            after, changed = remove_trust_grant(after, targets.node_role_arn, withdrawn)[0], True
    if changed:
        guard_trust(
            before, after, targets.node_role_arn, {(targets.node_role_arn, external_id)}, s3, request.access_role_name
        )
        size = non_whitespace_size(after)
        check_trust_quota(after, trust_quota(iam, s3, size), request.access_role_name, s3)
        if plan is None:  # preflight linted the same grant, of the same length, under the same lock
            lint(
                ctx,
                after,
                analyzer.TRUST,
                {grant_sid(targets.node_role_arn)},
                f"trust policy of {request.access_role_name}",
                s3,
            )
    record = iam_ops.write_trust_policy(
        iam,
        s3,
        role_name=request.access_role_name,
        before=before,
        after=after,
        fingerprints=ctx.fingerprints,
        dry_run=ctx.dry_run,
    )
    if promote is not None and not ctx.dry_run:
        id_record = _promote(request, ctx, promote, iam, before, after, record)
    if changed:
        noted(ctx, trust_key(request), locks.document_hash(after))
    result = {
        **record,
        "principal": targets.node_role_arn,
        "externalIdAdded": external_id not in grant_external_ids(before, targets.node_role_arn),
        "externalIdWithdrawn": withdrawn is not None,
        "externalIdFingerprint": ctx.fingerprints.of(external_id),
        "hash": locks.document_hash(after),
    }
    if id_record is not None:
        result["externalId"] = id_record
    return result


def _external_id_to_grant(
    request: ClusterRequest, ctx: StepContext, known: dict[str, Any]
) -> tuple[dict[str, Any] | None, str, tuple[str, str | None] | None, str | None]:
    """(secret record, the ID, (staged version, current version) to promote after the write,
    the current ID it replaces) from what preflight found, reading no more than needed.

    The ID read must be the one preflight planned (`known["fingerprint"]`): a secret written
    in between is never granted (ExternalIdSecretMismatch).
    """
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    if known.get("requested"):
        staged = staged_ids.read_staged(secrets, name) or (None, None)
        current = external_ids.read_version(secrets, name, staged_ids.CURRENT)
        value = _expected(request, ctx, known, staged[1], "the staged ID changed since preflight")
        return None, value, (str(staged[0]), current[0] if current else None), current[1] if current else None
    if not known["stored"] and not ctx.dry_run:
        if request.requested_created:  # Validate created the secret with the request's ID
            arn, stored = _stored_external_id(request, ctx)
            value = _expected(request, ctx, known, stored, "the secret changed since preflight")
            created = {"secretName": name, "secretArn": arn, "generated": False, "action": "created"}
            return {**created, "applied": True}, value, None, None
        value = request.external_id or generate_external_id()
        made = external_ids.create_external_id(secrets, name=name, cluster_id=request.cluster_id, value=value)
        if made is not None:
            return {**made, "generated": request.external_id is None}, value, None, None
    if known["stored"] and not known["replacing"]:
        # The stored ID stays the cluster's (e.g. a grant being restored): one read.
        arn, stored = _stored_external_id(request, ctx)
        value = _expected(request, ctx, known, stored, "the secret changed since preflight")
        if request.external_id in (None, value):
            unchanged = {"secretName": name, "secretArn": arn, "generated": False, "action": "unchanged"}
            return {**unchanged, "applied": not ctx.dry_run}, value, None, None
    # Anything else (a new plaintext ID in a dry run, a secret created meanwhile): the full path.
    record = external_ids.ensure_external_id(
        secrets, name=name, cluster_id=request.cluster_id, provided=request.external_id, dry_run=ctx.dry_run
    )
    if request.external_id:
        return record, request.external_id, None, None
    arn, value = _stored_external_id(request, ctx)
    return {**record, "secretArn": arn}, value, None, None


def _expected(request: ClusterRequest, ctx: StepContext, known: dict[str, Any], value: str | None, why: str) -> str:
    """`value`, if it is the ID preflight planned to grant."""
    expected = known.get("fingerprint")
    if value is None or (expected and not ctx.fingerprints.matches(expected, value)):
        raise ExternalIdSecretMismatch(
            request.cluster_id, external_ids.secret_name(ctx.secret_prefix, request.cluster_id), why
        )
    return value


def _promote(
    request: ClusterRequest,
    ctx: StepContext,
    versions: tuple[str, str | None],
    iam: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    record: dict[str, Any],
) -> dict[str, Any]:
    """The staged ID becomes the cluster's, now that the grant is written; all or nothing.

    If the secret cannot follow, the grant is put back (this step's record never reaches
    Compensate when it fails); if even that fails, UndoIncomplete carries the trust record.
    """
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    try:
        return staged_ids.promote(ctx.sessions.local_client("secretsmanager"), name, versions[0], versions[1])
    except AtcXaccountError as failure:
        if record["action"] == "unchanged":
            raise
        s3 = request.s3_account_id
        try:
            iam_ops.write_trust_policy(
                iam,
                s3,
                role_name=request.access_role_name,
                before=after,
                after=before,
                fingerprints=ctx.fingerprints,
            )
        except AtcXaccountError as undo:
            what = f"the trust policy of {request.access_role_name} in {s3} keeps this step's grant"
            raise UndoIncomplete(
                f"{failure}; putting the trust policy back failed too: {undo}",
                [{"change": "trust", "what": what, **record}],
                account=s3,
            ) from failure
        noted(ctx, trust_key(request), locks.document_hash(before))
        raise


def _replaced_external_id(
    request: ClusterRequest,
    ctx: StepContext,
    trust: dict[str, Any],
    principal: str,
    current: str,
    replaced: str | None = None,
) -> str | None:
    """The ID the new one replaces (`replaced`, else the secret's AWSPREVIOUS) while it is granted.

    An event that gives a cluster a new `externalId` replaces the old one: the old ID must
    stop opening the role, in the same write that adds the new one.
    """
    if replaced is None:
        name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
        found = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), name, "AWSPREVIOUS")
        replaced = found[1] if found else None
    previous = (None, replaced) if replaced else None
    if previous is None or previous[1] == current or previous[1] not in grant_external_ids(trust, principal):
        return None
    targets = Targets.of(request, ctx.partition)
    others = users.others(
        ctx.sessions.local_client("dynamodb"),
        ctx.registry_table,
        request.cluster_manager_account_id,
        request.cluster_id,
    )
    if any(
        other.get("nodeRoleArn") == targets.node_role_arn
        and other.get("accessRoleArn") == targets.access_role_arn
        and ctx.fingerprints.matches(other.get("externalIdFingerprint"), previous[1])
        for other in others
    ):
        return None  # another registered cluster still opens the role with it
    return previous[1]
