"""The onboarding steps: one function per state of `statemachine/onboard.asl.json`.

Handlers stay thin: they build a `StepContext`, call one function here and return its
dict. Each step is idempotent and returns what it changed (before/after).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atc_xaccount import external_ids, iam_ops
from atc_xaccount.arns import partition_for_region, policy_arn, role_arn
from atc_xaccount.assume_policy import merge_assume_policy
from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import PrerequisiteMissing, QuotaExceeded, VerificationFailed
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust
from atc_xaccount.extid import generate_external_id
from atc_xaccount.lint import lint_identity_policy, lint_trust_policy, raise_on_errors
from atc_xaccount.model import ClusterRequest, Defaults, parse_event
from atc_xaccount.sessions import AccountSessions
from atc_xaccount.trust import grant_sid, merge_trust_grant

BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")

TRUST_QUOTA_NAME = "IAM role trust policy length (AssumeRolePolicySizeQuota / ACLSizePerRole)"
TRUST_QUOTA_HOW = (
    "request an increase of 'Role trust policy length' for IAM in Service Quotas "
    "(up to 4,096 characters) in that account, or deregister unused clusters"
)
POLICY_QUOTA_NAME = "IAM managed policy document size (6,144 non-whitespace characters)"
POLICY_QUOTA_HOW = "this quota cannot be raised; split the clusters across assume policies"


@dataclass(frozen=True)
class StepContext:
    """What every step needs besides its input: sessions and deployment settings."""

    sessions: AccountSessions
    secret_prefix: str
    defaults: Defaults
    dry_run: bool = False

    @property
    def partition(self) -> str:
        return self.sessions.partition

    @classmethod
    def from_env(cls, environ: Mapping[str, str], execution: str | None) -> StepContext:
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        sessions = AccountSessions(
            automation_role_name=environ.get("AUTOMATION_ROLE_NAME", "atc-xaccount-automation"),
            partition=partition_for_region(region),
            region=region,
            execution=execution,
        )
        return cls(
            sessions=sessions,
            secret_prefix=environ.get("EXTERNAL_ID_SECRET_PREFIX", "atc-xaccount"),
            defaults=Defaults.from_env(environ),
        )


@dataclass(frozen=True)
class Targets:
    """The ARNs one cluster's three changes are about, in the region's partition."""

    node_role_arn: str
    access_role_arn: str
    assume_policy_arn: str

    @classmethod
    def of(cls, request: ClusterRequest, partition: str) -> Targets:
        return cls(
            node_role_arn=role_arn(partition, request.cluster_manager_account_id, request.node_role_name),
            access_role_arn=role_arn(partition, request.s3_account_id, request.access_role_name),
            assume_policy_arn=policy_arn(partition, request.cluster_manager_account_id, request.assume_policy_name),
        )


# --- validate --------------------------------------------------------------------------


def validate(event: Any, defaults: Defaults) -> dict[str, Any]:
    """Parse the EventBridge event (or its detail) into a request; no AWS call."""
    return {"request": parse_event(event, defaults).to_dict()}


# --- preflight -------------------------------------------------------------------------


def preflight(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Prove every prerequisite and quota holds before the first write."""
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
    desired_policy, _ = merge_assume_policy(policy.document if policy else None, targets.access_role_arn)
    policy_size = _check_policy_quota(desired_policy, request.assume_policy_name, cm)
    raise_on_errors(lint_identity_policy(desired_policy), request.assume_policy_name, cm)

    external_id = _external_id_for_sizing(request, ctx)
    merged_trust, _ = merge_trust_grant(access_role["AssumeRolePolicyDocument"], targets.node_role_arn, external_id)
    quota = iam_ops.trust_policy_size_quota(s3_iam, s3)
    trust_size = _check_trust_quota(merged_trust, quota, request.access_role_name, s3)
    raise_on_errors(
        lint_trust_policy(merged_trust, {grant_sid(targets.node_role_arn)}, s3),
        f"trust policy of {request.access_role_name}",
        s3,
    )
    return {
        "prerequisites": "present",
        "assumePolicyExists": policy is not None,
        "assumePolicySize": policy_size,
        "assumePolicyQuota": iam_ops.MANAGED_POLICY_SIZE_QUOTA,
        "trustPolicySize": trust_size,
        "trustPolicyQuota": quota,
    }


def _external_id_for_sizing(request: ClusterRequest, ctx: StepContext) -> str:
    """The real ID when known; otherwise one of the length that will be generated.

    Allowed external ID characters need no JSON escaping, so the merged policy's size
    depends only on the ID's length: preflight can check the quota before the ID exists.
    """
    if request.external_id:
        return request.external_id
    secrets = ctx.sessions.local_client("secretsmanager")
    stored = external_ids.read_external_id(secrets, external_ids.secret_name(ctx.secret_prefix, request.cluster_id))
    return stored[1] if stored else generate_external_id()


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
    """Store (or reuse) the cluster's external ID; only its secret ARN travels on."""
    record = external_ids.ensure_external_id(
        ctx.sessions.local_client("secretsmanager"),
        name=external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        cluster_id=request.cluster_id,
        provided=request.external_id,
        dry_run=ctx.dry_run,
    )
    scrubbed = ClusterRequest.from_dict({**request.to_dict(), "externalId": None})
    return {"request": scrubbed.to_dict(), "externalId": record}


def _external_id(request: ClusterRequest, ctx: StepContext) -> str:
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    stored = external_ids.read_external_id(ctx.sessions.local_client("secretsmanager"), name)
    if stored is None:
        raise PrerequisiteMissing("secret", name, "automation")
    return stored[1]


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
        raise_on_errors(lint_identity_policy(desired), request.assume_policy_name, cm)
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


def merge_trust(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Merge the node role's external-ID grant into the access role's trust policy."""
    s3 = request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    iam = ctx.sessions.client("iam", s3)
    role = iam_ops.get_role(iam, s3, request.access_role_name)
    if role is None:
        raise PrerequisiteMissing("role", request.access_role_name, s3)
    before = role["AssumeRolePolicyDocument"]
    after, changed = merge_trust_grant(before, targets.node_role_arn, _external_id(request, ctx))
    if changed:
        _check_trust_quota(after, iam_ops.trust_policy_size_quota(iam, s3), request.access_role_name, s3)
        raise_on_errors(
            lint_trust_policy(after, {grant_sid(targets.node_role_arn)}, s3),
            f"trust policy of {request.access_role_name}",
            s3,
        )
    return iam_ops.write_trust_policy(
        iam, s3, role_name=request.access_role_name, before=before, after=after, dry_run=ctx.dry_run
    )


# --- verify ----------------------------------------------------------------------------


def verify(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Read both sides back and evaluate them: would the node role get in, and to what?"""
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    cm_iam = ctx.sessions.client("iam", cm)
    s3_iam = ctx.sessions.client("iam", s3)
    checks: list[dict[str, Any]] = []

    policy = iam_ops.get_policy_state(cm_iam, cm, targets.assume_policy_arn)
    identity = evaluate_identity([policy.document] if policy else [], "sts:AssumeRole", targets.access_role_arn)
    checks.append(_check("assume policy allows sts:AssumeRole on the access role", identity.allowed, identity.reason))
    attached = targets.assume_policy_arn in iam_ops.attached_policy_arns(cm_iam, cm, request.node_role_name)
    checks.append(_check(f"{request.assume_policy_name} attached to {request.node_role_name}", attached, ""))

    role = iam_ops.get_role(s3_iam, s3, request.access_role_name)
    trust = role["AssumeRolePolicyDocument"] if role else {}
    external_id = _external_id(request, ctx)
    admitted = evaluate_trust(trust, targets.node_role_arn, external_id)
    checks.append(_check("trust admits the node role with the external ID", admitted.allowed, admitted.reason))
    refused = evaluate_trust(trust, targets.node_role_arn, None)
    checks.append(_check("trust refuses the node role without an external ID", not refused.allowed, refused.reason))
    checks.extend(_bucket_checks(request, ctx, s3_iam))

    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise VerificationFailed(s3 if any("trust" in c["check"] for c in failed) else cm, failed)
    return {
        "verified": True,
        "checks": checks,
        "roleArn": targets.access_role_arn,
        "nodeRoleArn": targets.node_role_arn,
        "externalIdSecret": external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
    }


def _bucket_checks(request: ClusterRequest, ctx: StepContext, s3_iam: Any) -> list[dict[str, Any]]:
    """Does the access role's access policy cover each bucket the event names?"""
    if not request.buckets:
        return []
    s3 = request.s3_account_id
    access_arn = next(
        (
            arn
            for arn in iam_ops.attached_policy_arns(s3_iam, s3, request.access_role_name)
            if arn.rsplit("/", 1)[-1].lower() == request.access_policy_name.lower()
        ),
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
