"""What IAM authorizes a request of the emulated world against: its resource ARN, its
condition keys, a KMS key's own policy. moto passes `*` as most resources and knows no
condition key but `sts:ExternalId`; `authz.py` asks these helpers instead.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends

#: IAM actions whose request context carries `iam:PolicyARN`.
POLICY_ARN_ACTIONS = frozenset(
    {
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:AttachUserPolicy",
        "iam:DetachUserPolicy",
        "iam:AttachGroupPolicy",
        "iam:DetachGroupPolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:PutUserPermissionsBoundary",
    }
)


def resource_account(target: str, account: str) -> str | None:
    """aws:ResourceAccount: the bucket owner for S3 (moto knows it), the caller's own for IAM and KMS."""
    if ":s3:::" not in target:
        own = target.startswith("arn:") and (":iam::" in target or ":kms:" in target)
        return account if own else None
    from moto.s3.models import s3_backends

    bucket = target.split(":::", 1)[1].split("/", 1)[0]
    owner = s3_backends.bucket_accounts.get(bucket)
    return str(owner[1]) if owner else None


def key_policy(key_arn: str, account: str) -> dict[str, Any] | None:
    from moto.kms.models import kms_backends

    parts = key_arn.split(":")
    if len(parts) < 6 or parts[2] != "kms":
        return None
    key = kms_backends[account][parts[3]].keys.get(key_arn.rsplit("/", 1)[-1])
    if key is None:
        return None
    return json.loads(key.policy) if isinstance(key.policy, str) else dict(key.policy)


def json_body(response: Any) -> dict[str, Any]:
    """The parameters of a JSON-protocol request (moto's `data` holds the raw body as a key)."""
    try:
        body = json.loads(response.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def key_arn(key_id: str | None, account: str) -> str | None:
    """The ARN of the key a KMS request names (moto authorizes KMS against `*`, AWS against the key)."""
    from moto.kms.exceptions import NotFoundException as KeyNotFound
    from moto.kms.models import kms_backends

    if not key_id:
        return None
    for backend in kms_backends[account].values():
        try:
            return str(backend.describe_key(backend.any_id_to_key_id(key_id)).arn)
        except KeyNotFound:
            continue
    return None


def param(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


def resource_of(action: str, data: dict[str, Any], account: str, partition: str, default: str) -> str:
    """The ARN IAM authorizes `action` against: the role named, else the policy named."""
    if action.startswith("kms:"):
        return key_arn(param(data, "KeyId"), account) or default
    if not action.startswith("iam:"):
        return default
    role_name = param(data, "RoleName")
    if role_name:
        try:
            return str(iam_backends[account][partition].get_role(role_name).arn)
        except NotFoundException:
            return f"arn:{partition}:iam::{account}:role{param(data, 'Path') or '/'}{role_name}"
    policy_arn = param(data, "PolicyArn")
    if policy_arn:
        return policy_arn
    policy_name = param(data, "PolicyName")
    if action == "iam:CreatePolicy" and policy_name:
        return f"arn:{partition}:iam::{account}:policy{param(data, 'Path') or '/'}{policy_name}"
    return default
