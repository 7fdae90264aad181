"""IAM reads and ensure-style writes: the only module that calls IAM.

Each `ensure_*` reads, decides with the pure policy functions, and writes only on a
difference. `dry_run=True` runs the same path with the write calls skipped. Every
ensure returns a change record with `before` and `after`, for compensation and audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call, is_not_found, translate
from atc_xaccount.documents import non_whitespace_size, same_document
from atc_xaccount.errors import AtcXaccountError, AwsOperationFailed
from atc_xaccount.redact import redact_external_ids

#: IAM's fixed quota on a managed policy document, in non-whitespace characters.
MANAGED_POLICY_SIZE_QUOTA = 6144
#: Default `ACLSizePerRole` when the account summary does not say otherwise.
DEFAULT_TRUST_POLICY_SIZE_QUOTA = 2048
#: IAM keeps at most five versions of a managed policy.
MAX_POLICY_VERSIONS = 5


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


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


# --- reads -----------------------------------------------------------------------------


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


def trust_policy_size_quota(iam: Any, account: str) -> int:
    """The account's trust policy quota (ACLSizePerRole), raisable via Service Quotas."""
    with aws_call("iam:GetAccountSummary", account):
        summary = iam.get_account_summary()["SummaryMap"]
    return int(summary.get("AssumeRolePolicySizeQuota", DEFAULT_TRUST_POLICY_SIZE_QUOTA))


# --- writes ----------------------------------------------------------------------------


def write_managed_policy(
    iam: Any,
    account: str,
    *,
    name: str,
    arn: str,
    current: PolicyState | None,
    desired: dict[str, Any],
    dry_run: bool = False,
) -> dict[str, Any]:
    """Create the policy, or add `desired` as its new default version.

    When five versions exist the oldest non-default one is retired first; the default
    version is never deleted.
    """
    before = current.document if current else None
    record: dict[str, Any] = {
        "account": account,
        "policyArn": arn,
        "before": before,
        "after": desired,
        "beforeVersion": current.default_version if current else None,
        "retiredVersion": None,
        "applied": not dry_run,
    }
    if current is not None and same_document(current.document, desired):
        return {**record, "action": "unchanged", "afterVersion": current.default_version}
    if current is None:
        record["action"] = "created"
        record["afterVersion"] = "v1"
        if not dry_run:
            with aws_call("iam:CreatePolicy", account):
                iam.create_policy(
                    PolicyName=name,
                    PolicyDocument=_dumps(desired),
                    Description="Lets ATC nodes assume S3 access roles in S3 accounts (managed by atc-xaccount)",
                )
        return record
    record["action"] = "versioned"
    if len(current.versions) >= MAX_POLICY_VERSIONS:
        oldest = current.oldest_non_default()
        if oldest is not None:
            retired = _read_version(iam, account, arn, oldest.version_id)
            record["retiredVersion"] = {"versionId": oldest.version_id, "document": retired}
            if not dry_run:
                with aws_call("iam:DeletePolicyVersion", account):
                    iam.delete_policy_version(PolicyArn=arn, VersionId=oldest.version_id)
    if dry_run:
        record["afterVersion"] = None
        return record
    try:
        with aws_call("iam:CreatePolicyVersion", account):
            created = iam.create_policy_version(PolicyArn=arn, PolicyDocument=_dumps(desired), SetAsDefault=True)[
                "PolicyVersion"
            ]
    except AtcXaccountError:
        # The retired version is already gone: put its document back before failing, so a
        # failed step leaves the policy's documents as it found them (not the version id).
        if record["retiredVersion"] is not None:
            with aws_call("iam:CreatePolicyVersion", account):
                iam.create_policy_version(
                    PolicyArn=arn, PolicyDocument=_dumps(record["retiredVersion"]["document"]), SetAsDefault=False
                )
        raise
    record["afterVersion"] = created["VersionId"]
    return record


def _read_version(iam: Any, account: str, arn: str, version_id: str) -> dict[str, Any]:
    with aws_call("iam:GetPolicyVersion", account):
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version_id)["PolicyVersion"]["Document"]
    return json.loads(document) if isinstance(document, str) else document


def ensure_attached(
    iam: Any, account: str, *, role_name: str, policy_arn: str, dry_run: bool = False
) -> dict[str, Any]:
    """Attach the policy to the role; already attached is success with no write."""
    attached = policy_arn in attached_policy_arns(iam, account, role_name)
    record = {
        "account": account,
        "roleName": role_name,
        "policyArn": policy_arn,
        "before": attached,
        "after": True,
        "applied": not dry_run,
        "action": "unchanged" if attached else "attached",
    }
    if not attached and not dry_run:
        with aws_call("iam:AttachRolePolicy", account):
            iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
    return record


def attach(
    iam: Any, account: str, *, role_name: str, policy_arn: str, needed: bool, dry_run: bool = False
) -> dict[str, Any]:
    """Attach without reading first, when a read under the lock said it is not attached.

    IAM's AttachRolePolicy succeeds on a policy that is already attached, so a retried
    invocation is safe.
    """
    record = {
        "account": account,
        "roleName": role_name,
        "policyArn": policy_arn,
        "before": not needed,
        "after": True,
        "applied": not dry_run,
        "action": "attached" if needed else "unchanged",
    }
    if needed and not dry_run:
        with aws_call("iam:AttachRolePolicy", account):
            iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
    return record


def write_trust_policy(
    iam: Any,
    account: str,
    *,
    role_name: str,
    before: dict[str, Any],
    after: dict[str, Any],
    dry_run: bool = False,
) -> dict[str, Any]:
    """Replace the role's trust policy with `after` (already merged) when it differs.

    The record's documents are redacted: a trust policy holds every cluster's external ID.
    """
    changed = not same_document(before, after)
    record = {
        "account": account,
        "roleName": role_name,
        "before": redact_external_ids(before),
        "after": redact_external_ids(after),
        "applied": not dry_run,
        "action": "updated" if changed else "unchanged",
        "size": non_whitespace_size(after),
    }
    if changed and not dry_run:
        with aws_call("iam:UpdateAssumeRolePolicy", account):
            iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=_dumps(after))
    return record


def delete_managed_policy(iam: Any, account: str, arn: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete a managed policy with all its versions (IAM requires non-default ones first)."""
    state = get_policy_state(iam, account, arn, with_versions=True)
    if state is None:
        return {"account": account, "policyArn": arn, "action": "unchanged", "before": None, "applied": not dry_run}
    record = {
        "account": account,
        "policyArn": arn,
        "action": "deleted",
        "before": state.document,
        "versions": len(state.versions),
        "applied": not dry_run,
    }
    if not dry_run:
        for version in state.versions:
            if not version.is_default:
                with aws_call("iam:DeletePolicyVersion", account):
                    iam.delete_policy_version(PolicyArn=arn, VersionId=version.version_id)
        with aws_call("iam:DeletePolicy", account):
            iam.delete_policy(PolicyArn=arn)
    return record


def ensure_detached(
    iam: Any, account: str, *, role_name: str, policy_arn: str, dry_run: bool = False
) -> dict[str, Any]:
    """Detach the policy from the role; not attached (or no role) is success with no write."""
    try:
        attached = policy_arn in attached_policy_arns(iam, account, role_name)
    except AwsOperationFailed as exc:
        if exc.code != "NoSuchEntity":
            raise
        attached = False
    record = {
        "account": account,
        "roleName": role_name,
        "policyArn": policy_arn,
        "before": attached,
        "after": False,
        "applied": not dry_run,
        "action": "detached" if attached else "unchanged",
    }
    if attached and not dry_run:
        with aws_call("iam:DetachRolePolicy", account):
            iam.detach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
    return record


def restore_policy_version(
    iam: Any, account: str, *, arn: str, default_version: str, drop_version: str, retired: dict[str, Any] | None
) -> None:
    """Undo `write_managed_policy`'s new version: old default back, new one dropped."""
    with aws_call("iam:SetDefaultPolicyVersion", account):
        iam.set_default_policy_version(PolicyArn=arn, VersionId=default_version)
    with aws_call("iam:DeletePolicyVersion", account):
        iam.delete_policy_version(PolicyArn=arn, VersionId=drop_version)
    if retired is not None:
        with aws_call("iam:CreatePolicyVersion", account):
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=_dumps(retired["document"]), SetAsDefault=False)
