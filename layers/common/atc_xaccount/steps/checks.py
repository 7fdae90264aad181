"""Guards every write passes: ownership, never-widen, size quotas, policy lint.

Preflight runs them on the documents it would write; the converge steps run them again
only when they had to decide without preflight's plan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from atc_xaccount import analyzer, iam_ops
from atc_xaccount.assume_policy import OWNED_SID, statement_problems
from atc_xaccount.documents import StatementShapeError, non_whitespace_size
from atc_xaccount.errors import OwnedStatementModified, QuotaExceeded, UnsupportedRolePath, WouldWidenAccess
from atc_xaccount.lint import lint_identity_policy, lint_trust_policy, raise_on_errors
from atc_xaccount.steps.context import StepContext
from atc_xaccount.trust import grant_shape_problems, grant_sid, is_admits_nobody
from atc_xaccount.widening import Pair, identity_violations, trust_violations

TRUST_QUOTA_NAME = "IAM role trust policy length (AssumeRolePolicySizeQuota / ACLSizePerRole)"
TRUST_QUOTA_HOW = (
    "request an increase of 'Role trust policy length' for IAM in Service Quotas "
    "(up to 4,096 characters) in that account, or deregister unused clusters"
)
POLICY_QUOTA_NAME = "IAM managed policy document size (6,144 non-whitespace characters)"
POLICY_QUOTA_HOW = "this quota cannot be raised; split the clusters across assume policies"
ATTACHED_QUOTA_NAME = "managed policies attached to an IAM role (AttachedPoliciesPerRoleQuota)"
ATTACHED_QUOTA_HOW = (
    "request an increase of 'Managed policies per role' (L-0DA4ABF3) for IAM in Service Quotas "
    "in that account, or detach a managed policy the role no longer needs"
)


def trust_quota(s3_iam: Any, s3: str, size: int) -> int:
    """The trust quota, read only when it matters: it is 2,048 or more in every account."""
    if size <= iam_ops.DEFAULT_TRUST_POLICY_SIZE_QUOTA:
        return iam_ops.DEFAULT_TRUST_POLICY_SIZE_QUOTA
    return iam_ops.trust_policy_size_quota(s3_iam, s3)


def check_attach_quota(iam: Any, account: str, role_name: str, attached: int) -> int:
    """Refuse an attach the role has no room for; the quota is read only at 10 or more attached.

    IAM answers `LimitExceeded` ("Cannot exceed quota for PoliciesPerRole") to the
    AttachRolePolicy that would pass it: after the assume policy was written.
    """
    if attached < iam_ops.DEFAULT_ATTACHED_POLICIES_PER_ROLE_QUOTA:
        return iam_ops.DEFAULT_ATTACHED_POLICIES_PER_ROLE_QUOTA
    quota = iam_ops.attached_policies_per_role_quota(iam, account)
    if attached + 1 > quota:
        raise QuotaExceeded(ATTACHED_QUOTA_NAME, f"role {role_name}", account, attached + 1, quota, ATTACHED_QUOTA_HOW)
    return quota


def check_role_path(role: dict[str, Any], account: str) -> None:
    """Refuse a role under a path: every ARN this project writes or verifies names a role at `/`."""
    path = str(role.get("Path") or "/")
    if path != "/":
        raise UnsupportedRolePath(account, str(role.get("RoleName")), path, str(role.get("Arn")))


def policy_state_from_plan(plan: dict[str, Any] | None) -> iam_ops.PolicyState | None:
    if plan is None:
        return None
    versions = tuple(iam_ops.PolicyVersion(v["versionId"], v["isDefault"], v["created"]) for v in plan["versions"])
    return iam_ops.PolicyState(
        plan["arn"], plan["defaultVersion"], plan["document"], versions, plan.get("attachmentCount", 0)
    )


def lint(ctx: StepContext, doc: dict[str, Any], kind: str, owned: set[str], name: str, account: str) -> str:
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


def check_policy_quota(doc: dict[str, Any], name: str, account: str) -> int:
    size = non_whitespace_size(doc)
    if size > iam_ops.MANAGED_POLICY_SIZE_QUOTA:
        raise QuotaExceeded(
            POLICY_QUOTA_NAME, f"policy {name}", account, size, iam_ops.MANAGED_POLICY_SIZE_QUOTA, POLICY_QUOTA_HOW
        )
    return size


def check_trust_quota(doc: dict[str, Any], quota: int, role_name: str, account: str) -> int:
    size = non_whitespace_size(doc)
    if size > quota:
        raise QuotaExceeded(TRUST_QUOTA_NAME, f"role {role_name}", account, size, quota, TRUST_QUOTA_HOW)
    return size


@contextmanager
def owned_statements(account: str, resource: str) -> Iterator[None]:
    """Name the account and resource when a statement carries our Sid in a foreign shape."""
    try:
        yield
    except StatementShapeError as exc:
        raise OwnedStatementModified(account, resource, exc.sid, exc.differences) from exc


def trust_resource(role_name: str) -> str:
    return f"the trust policy of role {role_name}"


def guard_trust(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    principal_arn: str,
    may_admit: Collection[Pair],
    account: str,
    role_name: str,
) -> None:
    """Refuse a trust write that admits more than `may_admit` adds, or weakens a Deny."""
    sid = grant_sid(principal_arn)

    def ours(stmt: dict[str, Any]) -> bool:
        return is_admits_nobody(stmt) or (stmt.get("Sid") == sid and not grant_shape_problems(stmt, principal_arn))

    violations = trust_violations(before, after, may_admit=may_admit, ours=ours)
    if violations:
        raise WouldWidenAccess(account, trust_resource(role_name), violations)


def guard_assume_policy(
    before: dict[str, Any] | None, after: dict[str, Any], may_allow: Collection[str], account: str, name: str
) -> None:
    """Refuse an assume-policy write that allows more than `may_allow` adds, or weakens a Deny."""

    def ours(stmt: dict[str, Any]) -> bool:
        return stmt.get("Sid") == OWNED_SID and not statement_problems(stmt)

    violations = identity_violations(before, after, may_allow=may_allow, ours=ours)
    if violations:
        raise WouldWidenAccess(account, f"policy {name}", violations)
