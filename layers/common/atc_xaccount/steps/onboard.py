"""The onboarding steps: one function per state of `statemachine/onboard.asl.json`.

Handlers stay thin: they build a `StepContext`, call one function here and return its
dict. Each step is idempotent and returns what it changed (before/after).
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import analyzer, external_ids, iam_ops, locks, registry
from atc_xaccount.assume_policy import OWNED_SID, merge_assume_policy
from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import PrerequisiteMissing, QuotaExceeded, VerificationFailed
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust
from atc_xaccount.extid import generate_external_id
from atc_xaccount.lint import lint_identity_policy, lint_trust_policy, raise_on_errors
from atc_xaccount.model import ClusterRequest, Defaults, parse_event
from atc_xaccount.redact import fingerprint
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


def preflight(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Prove every prerequisite and quota holds before the first write; say what must change.

    `upToDate` lets the state machine skip locking and writing when a re-delivered event
    has nothing to do (zero write calls).
    """
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    cm_iam = ctx.sessions.client("iam", cm)
    s3_iam = ctx.sessions.client("iam", s3)

    if iam_ops.get_role(cm_iam, cm, request.node_role_name) is None:
        raise PrerequisiteMissing("role", request.node_role_name, cm)
    access_role = iam_ops.get_role(s3_iam, s3, request.access_role_name)
    if access_role is None:
        raise PrerequisiteMissing("role", request.access_role_name, s3)
    attached = iam_ops.attached_policy_arns(s3_iam, s3, request.access_role_name)
    if not any(arn.rsplit("/", 1)[-1].lower() == request.access_policy_name.lower() for arn in attached):
        raise PrerequisiteMissing(f"policy attached to role {request.access_role_name}", request.access_policy_name, s3)

    policy = iam_ops.get_policy_state(cm_iam, cm, targets.assume_policy_arn)
    desired_policy, policy_changes = merge_assume_policy(policy.document if policy else None, targets.access_role_arn)
    policy_size = _check_policy_quota(desired_policy, request.assume_policy_name, cm)
    analyzed: dict[str, str] = {}
    if policy_changes:
        analyzed["assumePolicy"] = _lint(
            ctx, desired_policy, analyzer.IDENTITY, {OWNED_SID}, request.assume_policy_name, cm
        )
    attach_needed = policy is None or targets.assume_policy_arn not in iam_ops.attached_policy_arns(
        cm_iam, cm, request.node_role_name
    )

    external_id, secret_changes, secret_arn = external_id_for_sizing(request, ctx)
    merged_trust, trust_changes = merge_trust_grant(
        access_role["AssumeRolePolicyDocument"], targets.node_role_arn, external_id
    )
    trust_size = non_whitespace_size(merged_trust)
    quota = iam_ops.trust_policy_size_quota(s3_iam, s3) if trust_changes else None
    if quota is not None:
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
    verified = None
    if not needed:
        # Nothing to write: what Verify would read back was just read, so check it here.
        verified = _verification(
            request,
            ctx,
            targets,
            policy.document if policy else {},
            True,
            access_role["AssumeRolePolicyDocument"],
            external_id,
            secret_arn,
            s3_iam,
            attached,
        )
    return {
        "prerequisites": "present",
        "upToDate": verified is not None and verified["verified"],
        "changesNeeded": needed,
        "verified": verified,
        "assumePolicySize": policy_size,
        "assumePolicyQuota": iam_ops.MANAGED_POLICY_SIZE_QUOTA,
        "trustPolicySize": trust_size,
        "trustPolicyQuota": quota,
        "accessAnalyzer": analyzed,
    }


def external_id_for_sizing(request: ClusterRequest, ctx: StepContext) -> tuple[str, bool, str | None]:
    """(external ID, whether its secret must still be written, the secret's ARN if it exists).

    When no ID exists yet, one of the length that will be generated stands in: allowed
    external ID characters need no JSON escaping, so the merged policy's size depends only
    on the ID's length, and preflight can check the quota before the ID exists.
    """
    secrets = ctx.sessions.local_client("secretsmanager")
    stored = external_ids.read_external_id(secrets, external_ids.secret_name(ctx.secret_prefix, request.cluster_id))
    arn = stored[0] if stored else None
    if request.external_id:
        return request.external_id, stored is None or stored[1] != request.external_id, arn
    if stored:
        return stored[1], False, arn
    return generate_external_id(), True, None


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


def ensure_assume_policy(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Create `atc-s3-assume-role`, or add the access role ARN as a new default version."""
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", cm)
    current = iam_ops.get_policy_state(iam, cm, targets.assume_policy_arn, with_versions=True)
    desired, changed = merge_assume_policy(current.document if current else None, targets.access_role_arn)
    if changed:
        _check_policy_quota(desired, request.assume_policy_name, cm)
        _lint(ctx, desired, analyzer.IDENTITY, {OWNED_SID}, request.assume_policy_name, cm)
    return iam_ops.write_managed_policy(
        iam,
        cm,
        name=request.assume_policy_name,
        arn=targets.assume_policy_arn,
        current=current,
        desired=desired,
        dry_run=ctx.dry_run,
    )


def attach_policy(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Attach `atc-s3-assume-role` to the node role (already attached: no write)."""
    cm = request.cluster_manager_account_id
    targets = Targets.of(request, ctx.partition)
    return iam_ops.ensure_attached(
        ctx.sessions.client("iam", cm),
        cm,
        role_name=request.node_role_name,
        policy_arn=targets.assume_policy_arn,
        dry_run=ctx.dry_run,
    )


def merge_trust(request: ClusterRequest, ctx: StepContext, external_id: str | None = None) -> dict[str, Any]:
    """Merge the node role's external-ID grant into the access role's trust policy.

    `external_id` overrides the stored one (a plan before the ID exists, a rotation).
    """
    s3 = request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", s3)
    role = iam_ops.get_role(iam, s3, request.access_role_name)
    if role is None:
        raise PrerequisiteMissing("role", request.access_role_name, s3)
    before = role["AssumeRolePolicyDocument"]
    external_id = external_id or _external_id(request, ctx)
    after, changed = merge_trust_grant(before, targets.node_role_arn, external_id)
    withdrawn = _replaced_external_id(request, ctx, after, targets.node_role_arn, external_id)
    if withdrawn is not None:
        after, changed = remove_trust_grant(after, targets.node_role_arn, withdrawn)[0], True
    if changed:
        _check_trust_quota(after, iam_ops.trust_policy_size_quota(iam, s3), request.access_role_name, s3)
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
    return {
        **record,
        "principal": targets.node_role_arn,
        "externalIdAdded": external_id not in grant_external_ids(before, targets.node_role_arn),
        "externalIdWithdrawn": withdrawn is not None,
    }


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


def verify(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Read both sides back and evaluate them: would the node role get in, and to what?"""
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    cm_iam = ctx.sessions.client("iam", cm)
    s3_iam = ctx.sessions.client("iam", s3)
    policy = iam_ops.get_policy_state(cm_iam, cm, targets.assume_policy_arn)
    attached = targets.assume_policy_arn in iam_ops.attached_policy_arns(cm_iam, cm, request.node_role_name)
    role = iam_ops.get_role(s3_iam, s3, request.access_role_name)
    secret_arn, external_id = _stored_external_id(request, ctx)
    result = _verification(
        request,
        ctx,
        targets,
        policy.document if policy else {},
        attached,
        role["AssumeRolePolicyDocument"] if role else {},
        external_id,
        secret_arn,
        s3_iam,
    )
    failed = [c for c in result["checks"] if not c["ok"]]
    if failed:
        raise VerificationFailed(s3 if any("trust" in c["check"] for c in failed) else cm, failed)
    return result


def _verification(
    request: ClusterRequest,
    ctx: StepContext,
    targets: Targets,
    policy_document: dict[str, Any],
    attached: bool,
    trust: dict[str, Any],
    external_id: str,
    secret_arn: str | None,
    s3_iam: Any,
    access_attached: list[str] | None = None,
) -> dict[str, Any]:
    """Evaluate what was read: the identity side, the attachment, the trust both ways, buckets."""
    documents = [policy_document] if policy_document else []
    identity = evaluate_identity(documents, "sts:AssumeRole", targets.access_role_arn)
    admitted = evaluate_trust(trust, targets.node_role_arn, external_id)
    refused = evaluate_trust(trust, targets.node_role_arn, None)
    checks = [
        _check("assume policy allows sts:AssumeRole on the access role", identity.allowed, identity.reason),
        _check(f"{request.assume_policy_name} attached to {request.node_role_name}", attached, ""),
        _check("trust admits the node role with the external ID", admitted.allowed, admitted.reason),
        _check("trust refuses the node role without an external ID", not refused.allowed, refused.reason),
        *_bucket_checks(request, ctx, s3_iam, access_attached),
    ]
    return {
        "verified": all(c["ok"] for c in checks),
        "checks": checks,
        "roleArn": targets.access_role_arn,
        "nodeRoleArn": targets.node_role_arn,
        "externalIdSecret": external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        "externalIdSecretArn": secret_arn,
        "externalIdFingerprint": fingerprint(external_id),
    }


def _bucket_checks(
    request: ClusterRequest, ctx: StepContext, s3_iam: Any, access_attached: list[str] | None = None
) -> list[dict[str, Any]]:
    """Does the access role's access policy cover each bucket the event names?"""
    if not request.buckets:
        return []
    s3 = request.s3_account_id
    if access_attached is None:
        access_attached = iam_ops.attached_policy_arns(s3_iam, s3, request.access_role_name)
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


def record(
    request: ClusterRequest, ctx: StepContext, execution: str | None, external_id_fingerprint: str | None = None
) -> dict[str, Any]:
    """Register the cluster as READY: what it was given, and which external ID is its own.

    The fingerprint comes from Verify when it has it (one secret read fewer).
    """
    targets = Targets.of(request, ctx.partition)
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    if external_id_fingerprint is None:
        external_id_fingerprint = fingerprint(_stored_external_id(request, ctx)[1])
    entry = {
        **{k: v for k, v in request.to_dict().items() if k != "externalId"},
        "nodeRoleArn": targets.node_role_arn,
        "accessRoleArn": targets.access_role_arn,
        "assumePolicyArn": targets.assume_policy_arn,
        "externalIdSecretName": name,
        "externalIdFingerprint": external_id_fingerprint,
        "state": registry.READY,
        "lastExecution": execution,
    }
    if ctx.dry_run:
        return entry
    return registry.put(ctx.sessions.local_client("dynamodb"), ctx.registry_table, entry)
