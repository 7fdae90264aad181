"""The onboarding steps: one function per state of `statemachine/onboard.asl.json`.

Handlers stay thin: they build a `StepContext`, call one function here and return its
dict. Each step is idempotent and returns what it changed (before/after).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atc_xaccount import analyzer, external_ids, iam_ops, locks, registry
from atc_xaccount.assume_policy import OWNED_SID, merge_assume_policy
from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import (
    AtcXaccountError,
    AwsOperationFailed,
    PrerequisiteMissing,
    QuotaExceeded,
    VerificationFailed,
)
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust
from atc_xaccount.extid import generate_external_id
from atc_xaccount.lint import lint_identity_policy, lint_trust_policy, raise_on_errors
from atc_xaccount.model import ClusterRequest, Defaults, parse_event
from atc_xaccount.redact import fingerprint
from atc_xaccount.steps.compensate import undo_policy_change
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.trust import grant_external_ids, grant_sid, merge_trust_grant, remove_trust_grant

BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")

TRUST_QUOTA_NAME = "IAM role trust policy length (AssumeRolePolicySizeQuota / ACLSizePerRole)"
TRUST_QUOTA_HOW = (
    "request an increase of 'Role trust policy length' for IAM in Service Quotas "
    "(up to 4,096 characters) in that account, or deregister unused clusters"
)
POLICY_QUOTA_NAME = "IAM managed policy document size (6,144 non-whitespace characters)"
POLICY_QUOTA_HOW = "this quota cannot be raised; split the clusters across assume policies"


# --- validate --------------------------------------------------------------------------


REGISTERED, DEREGISTERED = "Cluster Registered", "Cluster Deregistered"


def validate(event: Any, defaults: Defaults, detail_type: str = REGISTERED) -> dict[str, Any]:
    """Parse the EventBridge event (or its detail) into a request; no AWS call."""
    return {"request": parse_event(event, defaults, detail_type).to_dict()}


# --- serialization --------------------------------------------------------------------


def lock_keys(request: ClusterRequest) -> list[str]:
    """The resources an onboarding or offboarding of `request` read-modify-writes."""
    return [
        locks.trust_lock_key(request.s3_account_id, request.access_role_name),
        locks.policy_lock_key(request.cluster_manager_account_id, request.assume_policy_name),
    ]


def acquire_locks(request: ClusterRequest, ctx: StepContext, owner: str) -> dict[str, Any]:
    """Serialize on the target role and policy; `ResourceLocked` makes the ASL retry."""
    return locks.acquire(ctx.sessions.local_client("dynamodb"), ctx.locks_table, lock_keys(request), owner)


def release_locks(ctx: StepContext, held: list[str], owner: str) -> dict[str, Any]:
    """Release what this execution took (nothing, on the path where nothing changed)."""
    if not held:
        return {"released": [], "owner": owner}
    return locks.release(ctx.sessions.local_client("dynamodb"), ctx.locks_table, held, owner)


# --- preflight -------------------------------------------------------------------------


def preflight(
    request: ClusterRequest, ctx: StepContext, owner: str | None = None, locked: bool = False
) -> dict[str, Any]:
    """Prove every prerequisite and quota holds before the first write; say what must change.

    Reads each thing once, in the order that lets a re-delivered event stop early, and
    hands the converge steps what they need (`plan`) so they do not read it again. When
    something must change it takes the locks of both resources at once, if they are as
    their last holder left them (`locks.acquire_if_unchanged`); `locked` says whether it
    did. `locked=True` on input means the locks are already held (the slow path).
    `upToDate` lets the state machine skip locking and writing (zero write calls).
    """
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    targets = Targets.of(request, ctx.partition)

    def cluster_manager_side() -> tuple[Any, Any, bool]:
        cm_iam = ctx.sessions.client("iam", cm)
        policy = iam_ops.get_policy_state(cm_iam, cm, targets.assume_policy_arn)
        return cm_iam, policy, _node_role_needs_attach(request, cm_iam, policy, targets)

    def s3_side() -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
        s3_iam = ctx.sessions.client("iam", s3)
        access_role = iam_ops.get_role(s3_iam, s3, request.access_role_name)
        if access_role is None:
            raise PrerequisiteMissing("role", request.access_role_name, s3)
        attached = iam_ops.attached_policy_arns(s3_iam, s3, request.access_role_name)
        if not any(arn.rsplit("/", 1)[-1].lower() == request.access_policy_name.lower() for arn in attached):
            raise PrerequisiteMissing(
                f"policy attached to role {request.access_role_name}", request.access_policy_name, s3
            )
        return s3_iam, access_role, _bucket_checks(request, ctx, s3_iam, attached)

    # The three sides do not depend on each other: their round trips overlap.
    sizing, cm_side, s3_result = _concurrently(lambda: _sizing(request, ctx), cluster_manager_side, s3_side)
    external_id, secret_changes, secret_arn, stored_id = sizing
    cm_iam, policy, attach_needed = cm_side
    s3_iam, access_role, bucket_checks = s3_result
    replacing = stored_id is not None and secret_changes
    if not all(c["ok"] for c in bucket_checks):
        # The access policy is the S3 account's, not ours to widen: refuse before any write.
        raise VerificationFailed(s3, [c for c in bucket_checks if not c["ok"]])

    desired_policy, policy_changes = merge_assume_policy(policy.document if policy else None, targets.access_role_arn)
    policy_size = _check_policy_quota(desired_policy, request.assume_policy_name, cm)
    analyzed: dict[str, str] = {}
    if policy_changes:
        analyzed["assumePolicy"] = _lint(
            ctx, desired_policy, analyzer.IDENTITY, {OWNED_SID}, request.assume_policy_name, cm
        )
        if policy is not None:
            policy = iam_ops.with_versions(cm_iam, cm, policy)

    trust = access_role["AssumeRolePolicyDocument"]
    merged_trust, trust_changes = merge_trust_grant(trust, targets.node_role_arn, external_id)
    if stored_id is not None and replacing and stored_id in grant_external_ids(merged_trust, targets.node_role_arn):
        # The event gives the cluster a new ID: the stored one stops opening the role in the same write.
        merged_trust, trust_changes = remove_trust_grant(merged_trust, targets.node_role_arn, stored_id)[0], True
    trust_size = non_whitespace_size(merged_trust)
    quota = None
    if trust_changes:
        quota = _trust_quota(s3_iam, s3, trust_size)
        _check_trust_quota(merged_trust, quota, request.access_role_name, s3)
        analyzed["trust"] = _lint(
            ctx,
            merged_trust,
            analyzer.TRUST,
            {grant_sid(targets.node_role_arn)},
            f"trust policy of {request.access_role_name}",
            s3,
        )
    needed = [
        name
        for name, needs in (
            ("externalId", secret_changes),
            ("assumePolicy", policy_changes),
            ("attach", attach_needed),
            ("trust", trust_changes),
        )
        if needs
    ]
    result: dict[str, Any] = {
        "prerequisites": "present",
        "upToDate": False,
        "changesNeeded": needed,
        "verified": None,
        "recordNeeded": True,
        "locked": False,
        "locks": {"keys": [], "owner": owner},
        "bucketChecks": bucket_checks,
        "assumePolicySize": policy_size,
        "assumePolicyQuota": iam_ops.MANAGED_POLICY_SIZE_QUOTA,
        "trustPolicySize": trust_size,
        "trustPolicyQuota": quota,
        "accessAnalyzer": analyzed,
        "plan": {
            "policy": _policy_plan(policy),
            "attachNeeded": attach_needed,
            "externalId": {"stored": secret_arn is not None, "replacing": replacing},
        },
    }
    if not needed:
        # Nothing to write: what Verify would evaluate was just read, so check it here.
        verified = _verification(
            request,
            ctx,
            targets,
            policy.document if policy else {},
            True,
            trust,
            fingerprint(external_id),
            external_id,
            secret_arn,
            bucket_checks,
        )
        failed = [c for c in verified["checks"] if not c["ok"]]
        if failed:
            # Our three changes are in place, yet access would not work (a foreign Deny, say):
            # nothing this workflow may write fixes it.
            raise VerificationFailed(s3 if any("trust" in c["check"] for c in failed) else cm, failed)
        result["verified"] = verified
        result["upToDate"] = True
        result["recordNeeded"] = locked or _record_needed(request, ctx, owner, verified["externalIdFingerprint"])
    seen = {
        locks.trust_lock_key(s3, request.access_role_name): locks.document_hash(trust),
        locks.policy_lock_key(cm, request.assume_policy_name): locks.policy_hash(
            policy.default_version if policy else None, policy.document if policy else None
        ),
    }
    result["seen"] = seen
    if locked:
        result["locked"], result["locks"] = True, {"keys": sorted(seen), "owner": owner}
    elif not result["upToDate"] and not ctx.dry_run and owner:
        taken = locks.acquire_if_unchanged(ctx.sessions.local_client("dynamodb"), ctx.locks_table, seen, owner)
        if taken is not None:
            result["locked"], result["locks"] = True, taken
    return result


def _concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent reads at once and return their results in order.

    The first failure, in the order given, is raised once all have finished. Each call runs
    in a copy of the caller's context variables (what the caller set stays visible).
    """
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="preflight") as pool:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    return [future.result() for future in futures]


def _node_role_needs_attach(request: ClusterRequest, cm_iam: Any, policy: Any, targets: Targets) -> bool:
    """Whether the assume policy must still be attached; proves the node role exists either way.

    A policy that does not exist is attached nowhere, so only the role's existence is read.
    """
    cm = request.cluster_manager_account_id
    if policy is None:
        if iam_ops.get_role(cm_iam, cm, request.node_role_name) is None:
            raise PrerequisiteMissing("role", request.node_role_name, cm)
        return True
    try:
        return targets.assume_policy_arn not in iam_ops.attached_policy_arns(cm_iam, cm, request.node_role_name)
    except AwsOperationFailed as exc:
        if exc.code == "NoSuchEntity":
            raise PrerequisiteMissing("role", request.node_role_name, cm) from exc
        raise


def _trust_quota(s3_iam: Any, s3: str, size: int) -> int:
    """The trust quota, read only when it matters: it is 2,048 or more in every account."""
    if size <= iam_ops.DEFAULT_TRUST_POLICY_SIZE_QUOTA:
        return iam_ops.DEFAULT_TRUST_POLICY_SIZE_QUOTA
    return iam_ops.trust_policy_size_quota(s3_iam, s3)


def _policy_plan(policy: Any) -> dict[str, Any] | None:
    """The assume policy as read under (or before taking) the lock, for EnsureAssumePolicy."""
    if policy is None:
        return None
    return {
        "arn": policy.arn,
        "defaultVersion": policy.default_version,
        "document": policy.document,
        "versions": [
            {"versionId": v.version_id, "isDefault": v.is_default, "created": v.created} for v in policy.versions
        ],
        "attachmentCount": policy.attachment_count,
    }


def _policy_state(plan: dict[str, Any] | None) -> iam_ops.PolicyState | None:
    if plan is None:
        return None
    versions = tuple(iam_ops.PolicyVersion(v["versionId"], v["isDefault"], v["created"]) for v in plan["versions"])
    return iam_ops.PolicyState(
        plan["arn"], plan["defaultVersion"], plan["document"], versions, plan.get("attachmentCount", 0)
    )


def _record_needed(request: ClusterRequest, ctx: StepContext, execution: str | None, fp: str) -> bool:
    existing = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id)
    return registry.differs(existing, registration_entry(request, ctx, execution, fp))


def external_id_for_sizing(request: ClusterRequest, ctx: StepContext) -> tuple[str, bool, str | None]:
    """(external ID, whether its secret must still be written, the secret's ARN if it exists).

    When no ID exists yet, one of the length that will be generated stands in: allowed
    external ID characters need no JSON escaping, so the merged policy's size depends only
    on the ID's length, and preflight can check the quota before the ID exists.
    """
    external_id, changes, arn, _ = _sizing(request, ctx)
    return external_id, changes, arn


def _sizing(request: ClusterRequest, ctx: StepContext) -> tuple[str, bool, str | None, str | None]:
    """`external_id_for_sizing` plus the stored ID (the one a new `externalId` replaces)."""
    secrets = ctx.sessions.local_client("secretsmanager")
    stored = external_ids.read_external_id(secrets, external_ids.secret_name(ctx.secret_prefix, request.cluster_id))
    arn, value = (stored[0], stored[1]) if stored else (None, None)
    if request.external_id:
        return request.external_id, value != request.external_id, arn, value
    if value is not None:
        return value, False, arn, value
    return generate_external_id(), True, None, None


def _lint(ctx: StepContext, doc: dict[str, Any], kind: str, owned: set[str], name: str, account: str) -> str:
    """Offline lint, then Access Analyzer; error findings in our statements stop the write."""
    if kind == analyzer.IDENTITY:
        findings = lint_identity_policy(doc, owned)
    else:
        findings = lint_trust_policy(doc, owned, account)
    if not ctx.access_analyzer:
        raise_on_errors(findings, name, account)
        return analyzer.UNAVAILABLE
    status, analyzed = analyzer.validate(ctx.sessions.local_client("accessanalyzer"), doc, kind, owned)
    raise_on_errors(findings + analyzed, name, account)
    return status


def _check_policy_quota(doc: dict[str, Any], name: str, account: str) -> int:
    size = non_whitespace_size(doc)
    if size > iam_ops.MANAGED_POLICY_SIZE_QUOTA:
        raise QuotaExceeded(
            POLICY_QUOTA_NAME, f"policy {name}", account, size, iam_ops.MANAGED_POLICY_SIZE_QUOTA, POLICY_QUOTA_HOW
        )
    return size


def _check_trust_quota(doc: dict[str, Any], quota: int, role_name: str, account: str) -> int:
    size = non_whitespace_size(doc)
    if size > quota:
        raise QuotaExceeded(TRUST_QUOTA_NAME, f"role {role_name}", account, size, quota, TRUST_QUOTA_HOW)
    return size


# --- resolve external id ---------------------------------------------------------------


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
    stored = external_ids.read_external_id(ctx.sessions.local_client("secretsmanager"), name)
    if stored is None:
        raise PrerequisiteMissing("secret", name, "automation")
    return stored


def _external_id(request: ClusterRequest, ctx: StepContext) -> str:
    return _stored_external_id(request, ctx)[1]


# --- the three changes -----------------------------------------------------------------


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
        current = iam_ops.get_policy_state(iam, cm, targets.assume_policy_arn, with_versions=True)
    else:
        current = _policy_state(plan["policy"])
    desired, changed = merge_assume_policy(current.document if current else None, targets.access_role_arn)
    if changed:
        _check_policy_quota(desired, request.assume_policy_name, cm)
        if plan is None:  # preflight linted this very document under the same lock
            _lint(ctx, desired, analyzer.IDENTITY, {OWNED_SID}, request.assume_policy_name, cm)
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


def attach_policy(request: ClusterRequest, ctx: StepContext, needed: bool | None = None) -> dict[str, Any]:
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
    )


def grant_assume_policy(request: ClusterRequest, ctx: StepContext, plan: dict[str, Any]) -> dict[str, Any]:
    """The cluster manager account's two changes, in order: the policy, then its attachment.

    One step for both: each step assumes into its account, and these two share one.
    Returns both change records and the hash of the policy as this step leaves it.
    """
    policy = ensure_assume_policy(request, ctx, plan)
    try:
        attach = attach_policy(request, ctx, plan["attachNeeded"])
    except AtcXaccountError:
        # The step is all or nothing: its record never reaches Compensate when it fails.
        if policy.get("applied") and policy.get("action") != "unchanged":
            undo_policy_change(request, ctx, policy)
        raise
    return {
        "assumePolicy": policy,
        "attach": attach,
        "hash": locks.policy_hash(policy.get("afterVersion"), policy["after"]),
    }


def merge_trust(
    request: ClusterRequest, ctx: StepContext, external_id: str | None = None, plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge the node role's external-ID grant into the access role's trust policy.

    `external_id` overrides the stored one (a plan before the ID exists, a rotation).
    With preflight's `plan` this step also stores the cluster's external ID (the secret is
    written right before the grant that uses it, and read no more than once).
    """
    s3 = request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    id_record = None
    if plan is not None and external_id is None:
        id_record, external_id = _ensure_external_id(request, ctx, plan["externalId"])
    iam = ctx.sessions.client("iam", s3)
    role = iam_ops.get_role(iam, s3, request.access_role_name)
    if role is None:
        raise PrerequisiteMissing("role", request.access_role_name, s3)
    before = role["AssumeRolePolicyDocument"]
    external_id = external_id or _external_id(request, ctx)
    after, changed = merge_trust_grant(before, targets.node_role_arn, external_id)
    withdrawn = None
    if plan is None or plan["externalId"]["replacing"]:
        withdrawn = _replaced_external_id(request, ctx, after, targets.node_role_arn, external_id)
    if withdrawn is not None:
        after, changed = remove_trust_grant(after, targets.node_role_arn, withdrawn)[0], True
    if changed:
        size = non_whitespace_size(after)
        _check_trust_quota(after, _trust_quota(iam, s3, size), request.access_role_name, s3)
        if plan is None:  # preflight linted the same grant, of the same length, under the same lock
            _lint(
                ctx,
                after,
                analyzer.TRUST,
                {grant_sid(targets.node_role_arn)},
                f"trust policy of {request.access_role_name}",
                s3,
            )
    record = iam_ops.write_trust_policy(
        iam, s3, role_name=request.access_role_name, before=before, after=after, dry_run=ctx.dry_run
    )
    result = {
        **record,
        "principal": targets.node_role_arn,
        "externalIdAdded": external_id not in grant_external_ids(before, targets.node_role_arn),
        "externalIdWithdrawn": withdrawn is not None,
        "externalIdFingerprint": fingerprint(external_id),
        "hash": locks.document_hash(after),
    }
    if id_record is not None:
        result["externalId"] = id_record
    return result


def _ensure_external_id(request: ClusterRequest, ctx: StepContext, known: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(secret record, the ID) from what preflight found, without reading what it just read."""
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    if not known["stored"] and not ctx.dry_run:
        value = request.external_id or generate_external_id()
        created = external_ids.create_external_id(secrets, name=name, cluster_id=request.cluster_id, value=value)
        if created is not None:
            return {**created, "generated": request.external_id is None}, value
    if known["stored"] and not known["replacing"]:
        # The stored ID stays the cluster's (e.g. a grant being restored): one read.
        arn, value = _stored_external_id(request, ctx)
        if request.external_id in (None, value):
            unchanged = {"secretName": name, "secretArn": arn, "generated": False, "action": "unchanged"}
            return {**unchanged, "applied": not ctx.dry_run}, value
    # Anything else (a new ID replacing the stored one, a secret created meanwhile): the full path.
    record = external_ids.ensure_external_id(
        secrets, name=name, cluster_id=request.cluster_id, provided=request.external_id, dry_run=ctx.dry_run
    )
    if request.external_id:
        return record, request.external_id
    arn, value = _stored_external_id(request, ctx)
    return {**record, "secretArn": arn}, value


def _replaced_external_id(
    request: ClusterRequest, ctx: StepContext, trust: dict[str, Any], principal: str, current: str
) -> str | None:
    """The cluster's previous external ID (the secret's AWSPREVIOUS) while it is still granted.

    An event that gives a cluster a new `externalId` replaces the old one: the old ID must
    stop opening the role, in the same write that adds the new one.
    """
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    previous = external_ids.read_version(ctx.sessions.local_client("secretsmanager"), name, "AWSPREVIOUS")
    if previous is None or previous[1] == current or previous[1] not in grant_external_ids(trust, principal):
        return None
    return previous[1]


# --- verify ----------------------------------------------------------------------------


def verify(
    request: ClusterRequest, ctx: StepContext, preflight_result: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """Evaluate the documents both accounts now hold: would the node role get in, and to what?

    The documents are the ones IAM accepted in this execution's writes (or preflight read,
    where nothing changed), under the locks: no read-back, no AWS call. The trust policy
    travels redacted, so it is evaluated with the ID's fingerprint, which is what it holds.
    """
    targets = Targets.of(request, ctx.partition)
    plan = preflight_result["plan"]
    granted = changes.get("clusterManager") or {}
    policy = granted.get("assumePolicy") or {}
    policy_document = policy.get("after") or (plan["policy"] or {}).get("document") or {}
    attached = not plan["attachNeeded"] or bool((granted.get("attach") or {}).get("after"))
    trust = changes.get("trust") or {}
    fp = trust.get("externalIdFingerprint")
    if not fp:
        raise VerificationFailed(request.s3_account_id, [_check("the trust step ran", False, "no trust change record")])
    result = _verification(
        request,
        ctx,
        targets,
        policy_document,
        attached,
        trust["after"],
        fp,
        fp,
        (trust.get("externalId") or {}).get("secretArn"),
        preflight_result.get("bucketChecks") or [],
    )
    failed = [c for c in result["checks"] if not c["ok"]]
    if failed:
        raise VerificationFailed(
            request.s3_account_id if any("trust" in c["check"] for c in failed) else request.cluster_manager_account_id,
            failed,
        )
    return result


def _verification(
    request: ClusterRequest,
    ctx: StepContext,
    targets: Targets,
    policy_document: dict[str, Any],
    attached: bool,
    trust: dict[str, Any],
    external_id_fingerprint: str,
    presented: str,
    secret_arn: str | None,
    bucket_checks: list[dict[str, Any]],
) -> dict[str, Any]:
    """Evaluate the identity side, the attachment, the trust both ways, and the buckets.

    `presented` is the external ID as `trust` holds it: the ID itself, or its fingerprint
    in a redacted document.
    """
    documents = [policy_document] if policy_document else []
    identity = evaluate_identity(documents, "sts:AssumeRole", targets.access_role_arn)
    admitted = evaluate_trust(trust, targets.node_role_arn, presented)
    refused = evaluate_trust(trust, targets.node_role_arn, None)
    checks = [
        _check("assume policy allows sts:AssumeRole on the access role", identity.allowed, identity.reason),
        _check(f"{request.assume_policy_name} attached to {request.node_role_name}", attached, ""),
        _check("trust admits the node role with the external ID", admitted.allowed, admitted.reason),
        _check("trust refuses the node role without an external ID", not refused.allowed, refused.reason),
        *bucket_checks,
    ]
    return {
        "verified": all(c["ok"] for c in checks),
        "checks": checks,
        "roleArn": targets.access_role_arn,
        "nodeRoleArn": targets.node_role_arn,
        "externalIdSecret": external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        "externalIdSecretArn": secret_arn,
        "externalIdFingerprint": external_id_fingerprint,
    }


def _bucket_checks(
    request: ClusterRequest, ctx: StepContext, s3_iam: Any, access_attached: list[str]
) -> list[dict[str, Any]]:
    """Does the access role's access policy cover each bucket the event names?"""
    if not request.buckets:
        return []
    s3 = request.s3_account_id
    access_arn = next(
        (arn for arn in access_attached if arn.rsplit("/", 1)[-1].lower() == request.access_policy_name.lower()),
        None,
    )
    state = iam_ops.get_policy_state(s3_iam, s3, access_arn) if access_arn else None
    docs = [state.document] if state else []
    checks = []
    for bucket in request.buckets:
        bucket_arn = f"arn:{ctx.partition}:s3:::{bucket}"
        denied = [
            action
            for action, resource in [(a, bucket_arn) for a in BUCKET_ACTIONS]
            + [(a, f"{bucket_arn}/*") for a in OBJECT_ACTIONS]
            if not evaluate_identity(docs, action, resource).allowed
        ]
        checks.append(
            _check(
                f"{request.access_policy_name} grants bucket {bucket}",
                not denied,
                f"not allowed: {', '.join(denied)}" if denied else "",
            )
        )
    return checks


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": bool(ok), "detail": detail}


# --- record ----------------------------------------------------------------------------


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
        also=[registry.update_item(ctx.registry_table, entry)],
    )
    return {**entry, "action": "recorded", "released": released["released"]}
