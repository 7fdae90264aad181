"""Guards every write passes: the size quotas and the policy lint (offline + Access Analyzer).

Preflight runs them on the documents it would write; the converge steps run them again
only when they had to decide without preflight's plan.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount import analyzer, iam_ops
from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import QuotaExceeded
from atc_xaccount.lint import lint_identity_policy, lint_trust_policy, raise_on_errors
from atc_xaccount.steps.context import StepContext

TRUST_QUOTA_NAME = "IAM role trust policy length (AssumeRolePolicySizeQuota / ACLSizePerRole)"
TRUST_QUOTA_HOW = (
    "request an increase of 'Role trust policy length' for IAM in Service Quotas "
    "(up to 4,096 characters) in that account, or deregister unused clusters"
)
POLICY_QUOTA_NAME = "IAM managed policy document size (6,144 non-whitespace characters)"
POLICY_QUOTA_HOW = "this quota cannot be raised; split the clusters across assume policies"


def trust_quota(s3_iam: Any, s3: str, size: int) -> int:
    """The trust quota, read only when it matters: it is 2,048 or more in every account."""
    if size <= iam_ops.DEFAULT_TRUST_POLICY_SIZE_QUOTA:
        return iam_ops.DEFAULT_TRUST_POLICY_SIZE_QUOTA
    return iam_ops.trust_policy_size_quota(s3_iam, s3)


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
