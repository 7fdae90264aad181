"""The reads the access chain needs, through the automation roles: the one place for them.

IAM goes through `iam_ops` (roles, attached and inline policies, boundaries); S3 (bucket
policy, default encryption) and KMS (the key's manager and policy) are read here. A
document the automation role may not read (a key in another account, a bucket policy
that denies it) is recorded as unreadable: the chain then says "undecidable", never "ok".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount import iam_ops
from atc_xaccount.arns import role_arn
from atc_xaccount.aws_errors import error_code
from atc_xaccount.chain import BucketDocs, ChainDocuments, KeyDocs, RoleDocs
from atc_xaccount.errors import AutomationRoleDenied, AwsOperationFailed
from atc_xaccount.model import ClusterRequest
from atc_xaccount.sessions import AccountSessions

NO_POLICY = frozenset({"NoSuchBucketPolicy"})
NO_ENCRYPTION = frozenset({"ServerSideEncryptionConfigurationNotFoundError"})


def read_role(iam: Any, account: str, arn: str) -> RoleDocs | None:
    """The role with its attached, inline and boundary documents; None when it does not exist."""
    name = arn.rsplit("/", 1)[-1]
    role = iam_ops.get_role(iam, account, name)
    if role is None:
        return None
    unreadable: dict[str, str] = {}
    policies: list[tuple[str, dict[str, Any]]] = []
    for policy_arn in iam_ops.attached_policy_arns(iam, account, name):
        document = _policy_document(iam, account, policy_arn, unreadable)
        if document is not None:
            policies.append((policy_arn.rsplit("/", 1)[-1], document))
    try:
        policies.extend(iam_ops.inline_policies(iam, account, name))
    except (AwsOperationFailed, AutomationRoleDenied) as exc:
        unreadable["inline policies"] = f"{exc.code}: {exc.aws_message}"
    boundary = None
    boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary_arn:
        document = _policy_document(iam, account, boundary_arn, unreadable)
        # An unread boundary is listed as unreadable: what it allows stays undecidable, not denied.
        boundary = (boundary_arn, document) if document is not None else None
    return RoleDocs(
        arn=arn,
        unique_id=role.get("RoleId"),
        trust=role.get("AssumeRolePolicyDocument"),
        policies=tuple(policies),
        boundary=boundary,
        max_session_duration=role.get("MaxSessionDuration"),
        unreadable=unreadable,
    )


def _policy_document(iam: Any, account: str, arn: str, unreadable: dict[str, str]) -> dict[str, Any] | None:
    try:
        state = iam_ops.get_policy_state(iam, account, arn)
    except (AwsOperationFailed, AutomationRoleDenied) as exc:
        unreadable[arn] = f"{exc.code}: {exc.aws_message}"
        return None
    if state is None:
        unreadable[arn] = "NoSuchEntity"
        return None
    return state.document


def read_bucket(s3: Any, kms: Any, bucket: str) -> BucketDocs:
    """The bucket's policy and default encryption, and the key it names (if readable)."""
    import json

    unreadable: dict[str, str] = {}
    policy = None
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as exc:
        if error_code(exc) not in NO_POLICY:
            unreadable["policy"] = _why(exc)
    encryption = None
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        encryption = (rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault")
    except ClientError as exc:
        if error_code(exc) not in NO_ENCRYPTION:
            unreadable["encryption"] = _why(exc)
    key = None
    key_id = (encryption or {}).get("KMSMasterKeyID")
    if key_id and str((encryption or {}).get("SSEAlgorithm", "")).startswith("aws:kms"):
        key = _read_key(kms, str(key_id), unreadable)
    return BucketDocs(bucket, policy, encryption, key, unreadable)


def _read_key(kms: Any, key_id: str, unreadable: dict[str, str]) -> KeyDocs | None:
    import json

    try:
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as exc:
        unreadable["key"] = _why(exc)
        return None
    if metadata.get("KeyManager") == "AWS":
        return KeyDocs(metadata["Arn"], "AWS")
    try:
        text = kms.get_key_policy(KeyId=metadata["Arn"], PolicyName="default")["Policy"]
    except ClientError as exc:
        unreadable["key"] = _why(exc)
        return None
    return KeyDocs(metadata["Arn"], str(metadata.get("KeyManager", "CUSTOMER")), json.loads(text))


def _why(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code')}: {error.get('Message')}"


def read_buckets(sessions: AccountSessions, account: str, buckets: Sequence[str]) -> tuple[BucketDocs, ...]:
    """Each bucket's policy, default encryption and key: 2 calls per bucket, 2 more for a customer key."""
    s3, kms = sessions.client("s3", account), sessions.client("kms", account)
    return tuple(read_bucket(s3, kms, bucket) for bucket in buckets)


def read_chain(
    sessions: AccountSessions,
    request: ClusterRequest,
    *,
    buckets: Sequence[str] | None = None,
    organizations: Mapping[str, str | None] | None = None,
) -> ChainDocuments:
    """Every document of the chain, read through the automation roles of both accounts.

    Calls: the node role (GetRole, ListAttachedRolePolicies, GetPolicy + GetPolicyVersion
    per attached policy and boundary, ListRolePolicies + GetRolePolicy per inline policy),
    the same for the access role, and per bucket GetBucketPolicy, GetBucketEncryption and,
    for a customer managed key, DescribeKey + GetKeyPolicy.
    """
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    node_arn = role_arn(sessions.partition, cm, request.node_role_name)
    access_arn = role_arn(sessions.partition, s3, request.access_role_name)
    node = read_role(sessions.client("iam", cm), cm, node_arn)
    access = read_role(sessions.client("iam", s3), s3, access_arn)
    bucket_docs = read_buckets(sessions, s3, list(buckets if buckets is not None else request.buckets))
    return ChainDocuments(
        node_arn,
        access_arn,
        node,
        access,
        bucket_docs,
        dict(organizations or {}),
        access_policy_name=request.access_policy_name,
        assume_policy_name=request.assume_policy_name,
    )
