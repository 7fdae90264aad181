"""The cluster's access key as the Node API holds it: what we write, and whether it still is (pure).

The key is what an operator used to create by hand in Cluster Manager (Credentials ->
Assume Role): storage `aws_s3` on the cluster's first bucket and path, credentials
`assume-role` with the access role's ARN and the cluster's external ID. Field names are
the Node API's (`accessKeyRequest`, `accessKeyStorageRequest`, `accessKeycreds`).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from atc_xaccount.redact import fingerprint

#: Key states the registry and the Ready event carry.
VERIFIED, UNUSABLE, REJECTED = "verified", "unusable", "rejected"

_ALPHABET = string.ascii_letters + string.digits
KEY_ID_PREFIX = "atcx"


def new_key_id() -> str:
    """An id of our own (the Node API accepts one; `atcx` marks it as this project's)."""
    return KEY_ID_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(28))


def new_key_secret() -> str:
    """The key's secret, about 256 bits: it opens the key (transfers, browse) like a password."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(43))


def s3_endpoint(partition: str, region: str) -> str:
    """The storage endpoint Cluster Manager defaults to (`s3.amazonaws.com`), per partition."""
    if partition == "aws":
        return "s3.amazonaws.com"
    if partition == "aws-cn":
        return f"s3.{region}.amazonaws.com.cn"
    return f"s3.{region}.amazonaws.com"


def session_name(cluster_id: str) -> str:
    """`assume_role_session_name`: CloudTrail then names the cluster (RoleSessionName: 2-64 of [\\w+=,.@-])."""
    return f"atc-xaccount-{cluster_id}"[:64]


def storage(
    *, bucket: str, path: str, endpoint: str, role_arn: str, external_id: str, cluster_id: str
) -> dict[str, Any]:
    """`accessKeyStorageRequest` for S3 through the access role, with the external ID."""
    return {
        "type": "aws_s3",
        "bucket": bucket,
        "path": path,
        "endpoint": endpoint,
        "credentials": {
            "type": "assume-role",
            "assume_role_arn": role_arn,
            "assume_role_external_id": external_id,
            "assume_role_session_name": session_name(cluster_id),
        },
    }


def create_body(key_id: str, key_secret: str, key_storage: dict[str, Any]) -> dict[str, Any]:
    """`accessKeyRequest`: our id and secret (the Node API would otherwise make them up)."""
    return {"id": key_id, "secret": key_secret, "storage": key_storage}


def update_body(key_storage: dict[str, Any]) -> dict[str, Any]:
    """`accessKeyPUTRequest`: the whole storage block again, credentials included."""
    return {"storage": key_storage}


def _same_path(shown: object, wanted: str) -> bool:
    return isinstance(shown, str) and shown.strip("/") == wanted.strip("/")


def differences(
    shown: dict[str, Any], *, bucket: str, path: str, endpoint: str, role_arn: str, external_id_fingerprint: str
) -> list[str]:
    """How the key the Node API shows differs from the key this cluster needs (never a secret).

    The 4.4.6 schema answers a GET with `accessKeyStorageResponse`, which has no
    `credentials`: when a Node API shows them anyway, the role and the external ID (by
    fingerprint) are compared too; otherwise the registry's fingerprint of what was
    written, and a browse through the key, stand for them.
    """
    storage_shown = shown.get("storage")
    found: dict[str, Any] = storage_shown if isinstance(storage_shown, dict) else {}
    problems = []
    for key, wanted in (("type", "aws_s3"), ("bucket", bucket), ("endpoint", endpoint)):
        if found.get(key) != wanted:
            problems.append(f"storage.{key} is {found.get(key)!r}, not {wanted!r}")
    if not _same_path(found.get("path"), path):
        problems.append(f"storage.path is {found.get('path')!r}, not {path!r}")
    creds = found.get("credentials")
    if isinstance(creds, dict):
        if creds.get("type") != "assume-role":
            problems.append(f"storage.credentials.type is {creds.get('type')!r}, not 'assume-role'")
        if creds.get("assume_role_arn") != role_arn:
            problems.append(f"storage.credentials.assume_role_arn is {creds.get('assume_role_arn')!r}, not {role_arn}")
        shown_id = creds.get("assume_role_external_id")
        if isinstance(shown_id, str) and fingerprint(shown_id) != external_id_fingerprint:
            problems.append("storage.credentials.assume_role_external_id is not the cluster's external ID")
    return problems


def key_record(
    *, key_id: str, url: str, state: str, external_id_fingerprint: str, secret_name: str, error: str | None = None
) -> dict[str, Any]:
    """What the registry keeps of the key (`accessKey`): never its secret, never the external ID."""
    record = {
        "id": key_id,
        "url": url,
        "state": state,
        "externalIdFingerprint": external_id_fingerprint,
        "secretName": secret_name,
        "createdByUs": True,
    }
    if error:
        record["lastError"] = error[:1000]
    return record
