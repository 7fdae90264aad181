"""Ensure-style writes of the assume policy and its attachment (and their undo).

Each reads (or takes the caller's state), decides, and writes only on a difference;
`dry_run=True` runs the same path with the write calls skipped; each returns a change
record with `before` and `after`, for compensation and audit.

Throttling and transient errors are botocore's (standard mode) and the state machines'
to retry. The eventual-consistency answers IAM gives right after a create or a detach
are retried here, for the call that follows that create or detach only, while the
Lambda has time left (`aws_errors.retried`).
"""

from __future__ import annotations

import json
from typing import Any

from atc_xaccount.aws_errors import JUST_CREATED_POLICY, JUST_DETACHED_POLICY, aws_call, retried
from atc_xaccount.documents import same_document
from atc_xaccount.errors import AtcXaccountError, AwsOperationFailed, UndoIncomplete
from atc_xaccount.iam_ops.reads import (
    MAX_POLICY_VERSIONS,
    PolicyState,
    attached_policy_arns,
    attached_policy_arns_raw,
    get_policy_state,
    policy_versions_raw,
    read_version,
    version_reader,
    with_versions,
)


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


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

    When five versions exist the oldest non-default one is retired first (the default is
    never deleted) and its document kept in the record. If the new version then cannot be
    created, the retired document goes back as a non-default version before the step
    fails; if even that fails, `UndoIncomplete` carries the document for Compensate.
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
        record["retiredVersion"] = _retire_oldest(iam, account, current, dry_run=dry_run)
    if dry_run:
        record["afterVersion"] = None
        return record
    try:
        created = retried(
            "iam:CreatePolicyVersion",
            account,
            lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=_dumps(desired), SetAsDefault=True),
        )["PolicyVersion"]
    except AtcXaccountError as failure:
        if record["retiredVersion"] is not None:
            _put_back_retired(iam, account, arn, record["retiredVersion"], failure)
        raise
    record["afterVersion"] = created["VersionId"]
    return record


def _retire_oldest(iam: Any, account: str, current: PolicyState, *, dry_run: bool) -> dict[str, Any] | None:
    """Delete the oldest non-default version, returning its id and document.

    A version already gone (a retried step whose first attempt retired it and put its
    document back under a new id) means the plan is stale: the versions are read again.
    """
    oldest = current.oldest_non_default()
    if oldest is None:
        return None
    document = read_version(iam, account, current.arn, oldest.version_id)
    retired = {
        "versionId": oldest.version_id,
        "document": document,
        "copies": _copies(iam, account, current, document, skip=oldest.version_id),
    }
    if dry_run:
        return retired
    try:
        retried(
            "iam:DeletePolicyVersion",
            account,
            lambda: iam.delete_policy_version(PolicyArn=current.arn, VersionId=oldest.version_id),
        )
    except AwsOperationFailed as exc:
        if exc.code != "NoSuchEntity":
            raise
        fresh = with_versions(iam, account, current)
        if len(fresh.versions) < MAX_POLICY_VERSIONS:
            return None
        return _retire_oldest(iam, account, fresh, dry_run=dry_run)
    return retired


def _copies(iam: Any, account: str, policy: PolicyState, document: dict[str, Any], *, skip: str) -> int:
    """How many versions hold `document` (the retired one included): what an undo must restore.

    Versions can repeat a document; counting them makes the restore exact and idempotent.
    """
    count = 1
    for version in policy.versions:
        if version.version_id == skip:
            continue
        held = policy.document if version.is_default else read_version(iam, account, policy.arn, version.version_id)
        count += same_document(held, document)
    return count


def _put_back_retired(
    iam: Any, account: str, arn: str, retired: dict[str, Any], failure: AtcXaccountError
) -> dict[str, Any]:
    """Re-create a retired version's document as a non-default version (a new version id)."""
    try:
        created = retried(
            "iam:CreatePolicyVersion",
            account,
            lambda: iam.create_policy_version(
                PolicyArn=arn, PolicyDocument=_dumps(retired["document"]), SetAsDefault=False
            ),
        )["PolicyVersion"]
    except AtcXaccountError as exc:
        left = {
            "change": "retiredVersion",
            "action": "retired",
            "what": f"version {retired['versionId']} of {arn} was deleted and not restored",
            "account": account,
            "policyArn": arn,
            **retired,
            "error": str(exc),
        }
        raise UndoIncomplete(
            f"{failure}; putting back retired version {retired['versionId']} of {arn} failed too: {exc}",
            [left],
            account=account,
        ) from failure
    return {"versionId": created["VersionId"], "restoredFrom": retired["versionId"]}


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
        _attach(iam, account, role_name, policy_arn, just_created=False)
    return record


def attach(
    iam: Any,
    account: str,
    *,
    role_name: str,
    policy_arn: str,
    needed: bool,
    dry_run: bool = False,
    just_created: bool = False,
) -> dict[str, Any]:
    """Attach without reading first, when a read under the lock said it is not attached.

    IAM's AttachRolePolicy succeeds on a policy that is already attached, so a retried
    invocation is safe. `just_created`: the policy was created a moment ago, so IAM may
    not find it yet (`NoSuchEntity` for seconds): retried, on this call only.
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
        _attach(iam, account, role_name, policy_arn, just_created=just_created)
    return record


def _attach(iam: Any, account: str, role_name: str, policy_arn: str, *, just_created: bool) -> None:
    retried(
        "iam:AttachRolePolicy",
        account,
        lambda: iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn),
        also=(JUST_CREATED_POLICY,) if just_created else (),
    )


def delete_managed_policy(
    iam: Any, account: str, arn: str, *, dry_run: bool = False, just_detached: bool = False
) -> dict[str, Any]:
    """Delete a managed policy with all its versions (IAM requires non-default ones first).

    `just_detached`: the policy was detached a moment ago, so IAM may still count the
    attachment (`DeleteConflict` for seconds): retried, on DeletePolicy only.
    """
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
                ignoring_gone(
                    "iam:DeletePolicyVersion",
                    account,
                    lambda v=version.version_id: iam.delete_policy_version(PolicyArn=arn, VersionId=v),
                )
        ignoring_gone(
            "iam:DeletePolicy",
            account,
            lambda: iam.delete_policy(PolicyArn=arn),
            also=(JUST_DETACHED_POLICY,) if just_detached else (),
        )
    return record


def ignoring_gone(operation: str, account: str, call: Any, *, also: tuple[Any, ...] = ()) -> None:
    """A delete whose target is already gone did what it was asked (a retried undo)."""
    try:
        retried(operation, account, call, also=also)
    except AwsOperationFailed as exc:
        if exc.code != "NoSuchEntity":
            raise


def ensure_detached(
    iam: Any, account: str, *, role_name: str, policy_arn: str, dry_run: bool = False
) -> dict[str, Any]:
    """Detach the policy from the role; not attached (or no role) is success with no write."""
    try:
        attached = policy_arn in retried(
            "iam:ListAttachedRolePolicies",
            account,
            lambda: attached_policy_arns_raw(iam, role_name),
        )
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
        ignoring_gone(
            "iam:DetachRolePolicy",
            account,
            lambda: iam.detach_role_policy(RoleName=role_name, PolicyArn=policy_arn),
        )
    return record


def ensure_policy_version_document(
    iam: Any, account: str, *, arn: str, document: dict[str, Any], copies: int = 1
) -> str:
    """Make sure `copies` versions of the policy hold `document` (a retired version put back).

    Idempotent: a version the first attempt put back counts, so a retried undo converges.
    Returns "restored", "already present" or "skipped: ..." when it cannot be done.
    """
    versions = retried("iam:ListPolicyVersions", account, lambda: policy_versions_raw(iam, arn))
    if versions is None:
        return "skipped: the policy no longer exists"
    present = 0
    for version_id in versions:
        held = retried("iam:GetPolicyVersion", account, version_reader(iam, arn, version_id))
        present += same_document(json.loads(held) if isinstance(held, str) else held, document)
    if present >= copies:
        return "already present"
    if len(versions) >= MAX_POLICY_VERSIONS:
        return f"skipped: {arn} has {MAX_POLICY_VERSIONS} versions again, no room to put it back"
    retried(
        "iam:CreatePolicyVersion",
        account,
        lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=_dumps(document), SetAsDefault=False),
    )
    return "restored"


def restore_policy_version(
    iam: Any,
    account: str,
    *,
    arn: str,
    default_version: str,
    drop_version: str,
    retired: dict[str, Any] | None,
) -> str | None:
    """Undo `write_managed_policy`'s new version: old default back, new one dropped, retired one back.

    Each part checks first, so a retried undo converges instead of failing on its own
    earlier progress.
    """
    versions = retried("iam:ListPolicyVersions", account, lambda: policy_versions_raw(iam, arn))
    default = retried(
        "iam:GetPolicy",
        account,
        lambda: iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"],
    )
    if default != default_version:
        retried(
            "iam:SetDefaultPolicyVersion",
            account,
            lambda: iam.set_default_policy_version(PolicyArn=arn, VersionId=default_version),
        )
    if versions is not None and drop_version in versions:
        ignoring_gone(
            "iam:DeletePolicyVersion",
            account,
            lambda: iam.delete_policy_version(PolicyArn=arn, VersionId=drop_version),
        )
    if retired is None:
        return None
    return ensure_policy_version_document(
        iam, account, arn=arn, document=retired["document"], copies=int(retired.get("copies", 1))
    )
