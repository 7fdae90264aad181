"""IAM reads: roles, attachments, policy documents and versions, the account's quotas.

Every IAM call of the layer is in this package (`tests/leastpriv` holds it to what the
bootstrap role grants); reads translate errors into the named project errors and treat
`NoSuchEntity` as absent where absence is an answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call, is_not_found, translate

#: IAM's fixed quota on a managed policy document, in non-whitespace characters.
MANAGED_POLICY_SIZE_QUOTA = 6144


#: Default `ACLSizePerRole` when the account summary does not say otherwise.
DEFAULT_TRUST_POLICY_SIZE_QUOTA = 2048


#: IAM keeps at most five versions of a managed policy.
MAX_POLICY_VERSIONS = 5


#: Default `AttachedPoliciesPerRoleQuota` (managed policies per role; raisable, never lower).
DEFAULT_ATTACHED_POLICIES_PER_ROLE_QUOTA = 10


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    is_default: bool
    created: str


@dataclass(frozen=True)
class PolicyState:
    """What IAM holds for one managed policy: its default document and versions."""

    arn: str
    default_version: str
    document: dict[str, Any]
    versions: tuple[PolicyVersion, ...] = field(default_factory=tuple)
    attachment_count: int = 0

    def oldest_non_default(self) -> PolicyVersion | None:
        candidates = [v for v in self.versions if not v.is_default]
        return min(candidates, key=lambda v: (v.created, _version_number(v.version_id)), default=None)


def _version_number(version_id: str) -> int:
    digits = version_id.lstrip("vV")
    return int(digits) if digits.isdigit() else 0


def get_role(iam: Any, account: str, name: str) -> dict[str, Any] | None:
    """The role with its decoded trust policy, or None when it does not exist."""
    try:
        return iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise translate(exc, "iam:GetRole", account) from exc


def attached_policy_arns(iam: Any, account: str, role_name: str) -> list[str]:
    arns: list[str] = []
    with aws_call("iam:ListAttachedRolePolicies", account):
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
            arns.extend(p["PolicyArn"] for p in page["AttachedPolicies"])
    return arns


def attached_policy_arns_raw(iam: Any, role_name: str) -> list[str]:
    """`attached_policy_arns` without translating errors (for callers that retry)."""
    arns: list[str] = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        arns.extend(p["PolicyArn"] for p in page["AttachedPolicies"])
    return arns


def get_policy_state(iam: Any, account: str, arn: str, *, with_versions: bool = False) -> PolicyState | None:
    """Default document (and, when asked, the version list) of a managed policy."""
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise translate(exc, "iam:GetPolicy", account) from exc
    default = policy["DefaultVersionId"]
    with aws_call("iam:GetPolicyVersion", account):
        document = iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]
    if isinstance(document, str):
        document = json.loads(document)
    versions: tuple[PolicyVersion, ...] = ()
    if with_versions:
        with aws_call("iam:ListPolicyVersions", account):
            listed = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        versions = tuple(
            PolicyVersion(v["VersionId"], bool(v["IsDefaultVersion"]), str(v.get("CreateDate", ""))) for v in listed
        )
    return PolicyState(arn, default, document, versions, int(policy.get("AttachmentCount", 0)))


def with_versions(iam: Any, account: str, policy: PolicyState) -> PolicyState:
    """The same policy state with its version list (needed only before adding a version)."""
    with aws_call("iam:ListPolicyVersions", account):
        listed = iam.list_policy_versions(PolicyArn=policy.arn)["Versions"]
    versions = tuple(
        PolicyVersion(v["VersionId"], bool(v["IsDefaultVersion"]), str(v.get("CreateDate", ""))) for v in listed
    )
    return PolicyState(policy.arn, policy.default_version, policy.document, versions, policy.attachment_count)


def read_version(iam: Any, account: str, arn: str, version_id: str) -> dict[str, Any]:
    with aws_call("iam:GetPolicyVersion", account):
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version_id)["PolicyVersion"]["Document"]
    return json.loads(document) if isinstance(document, str) else document


def inline_policies(iam: Any, account: str, role_name: str) -> list[tuple[str, dict[str, Any]]]:
    """The role's inline policies as (name, document), for the access chain (issue 11)."""
    found: list[tuple[str, dict[str, Any]]] = []
    with aws_call("iam:ListRolePolicies", account):
        names = [
            n
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name)
            for n in page["PolicyNames"]
        ]
    for name in names:
        with aws_call("iam:GetRolePolicy", account):
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        found.append((name, json.loads(document) if isinstance(document, str) else document))
    return found


def role_policy(iam: Any, account: str, role_name: str, policy_name: str) -> dict[str, Any]:
    """One inline policy of a role (the automation role reads its own, once, in Preflight)."""
    with aws_call("iam:GetRolePolicy", account):
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else dict(document)


def trust_policy_size_quota(iam: Any, account: str) -> int:
    """The account's trust policy quota (ACLSizePerRole), raisable via Service Quotas."""
    return _account_quota(iam, account, "AssumeRolePolicySizeQuota", DEFAULT_TRUST_POLICY_SIZE_QUOTA)


def attached_policies_per_role_quota(iam: Any, account: str) -> int:
    """How many managed policies a role of the account may have attached, raisable via Service Quotas."""
    return _account_quota(iam, account, "AttachedPoliciesPerRoleQuota", DEFAULT_ATTACHED_POLICIES_PER_ROLE_QUOTA)


def _account_quota(iam: Any, account: str, key: str, default: int) -> int:
    with aws_call("iam:GetAccountSummary", account):
        summary = iam.get_account_summary()["SummaryMap"]
    return int(summary.get(key, default))


def policy_versions_raw(iam: Any, arn: str) -> list[str] | None:
    try:
        listed = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return [v["VersionId"] for v in listed]


def version_reader(iam: Any, arn: str, version_id: str) -> Callable[[], Any]:
    return lambda: iam.get_policy_version(PolicyArn=arn, VersionId=version_id)["PolicyVersion"]["Document"]
