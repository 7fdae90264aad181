"""Custody of a cluster's external ID in Secrets Manager (automation account).

The ID is credential-adjacent: it lives in one secret per cluster, and only the secret's
ARN travels through the workflow. Keeping it there also makes a re-delivered event
without an `externalId` reuse the ID it was first given, instead of adding a second grant.

Secrets Manager deletes asynchronously: for a short while after `DeleteSecret` (even with
`ForceDeleteWithoutRecovery`) the name is "marked for deletion". Reads then answer
`InvalidRequestException`: such a secret is absent (the cluster has no ID any more), and
`CreateSecret` on its name raises SecretDeletionPending, which the state machine retries
with backoff.
"""

from __future__ import annotations

import contextvars
import os
import threading
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call, error_code, is_not_found, translate
from atc_xaccount.errors import PrerequisiteMissing, SecretDeletionPending
from atc_xaccount.extid import generate_external_id
from atc_xaccount.redact import Fingerprints

AUTOMATION_ACCOUNT = "automation"
CLUSTER_TAG = "atc-xaccount:cluster-id"

# --- the fingerprint key ---------------------------------------------------------------
#
# The deployment's HMAC key (template.yaml `FingerprintKey`) is read once per container and
# secret: a warm Lambda container fingerprints without another call. A Lambda process is
# one container; the embedded emulator runs every function's containers in one process and
# says which one is running (`CONTAINER`), so each function still reads the key with its
# own role on its first invocation. Without a secret (a test's own StepContext, a one-shot
# tool) a key of this process's own stands in: its fingerprints compare with each other,
# never with a deployment's records.
CONTAINER: contextvars.ContextVar[str] = contextvars.ContextVar("atc_xaccount_container", default="")
_KEYS: dict[tuple[str, str], Fingerprints] = {}
_KEYS_LOCK = threading.Lock()
_PROCESS_KEY = Fingerprints(os.urandom(32))


def fingerprints(secrets: Any, secret_id: str) -> Fingerprints:
    """The deployment's fingerprints, keyed by the secret `secret_id` (ARN or name)."""
    if not secret_id:
        return _PROCESS_KEY
    cached = (CONTAINER.get(), secret_id)
    with _KEYS_LOCK:
        if cached not in _KEYS:
            with aws_call("secretsmanager:GetSecretValue", AUTOMATION_ACCOUNT):
                value = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
            _KEYS[cached] = Fingerprints(value.encode())
        return _KEYS[cached]


def cold_start() -> None:
    """Forget every cached key, as new containers would (the emulator, after a role change)."""
    with _KEYS_LOCK:
        _KEYS.clear()


def secret_name(prefix: str, cluster_id: str) -> str:
    return f"{prefix}/{cluster_id}/external-id"


def being_deleted(exc: ClientError) -> bool:
    """Secrets Manager's answer about a secret it has scheduled for deletion (or is deleting)."""
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return error_code(exc) == "InvalidRequestException" and (
        "marked for deletion" in message or "scheduled for deletion" in message or "marked deleted" in message
    )


def read_external_id(secrets: Any, name: str) -> tuple[str, str] | None:
    """(secret ARN, external ID), or None when the cluster has no secret yet."""
    try:
        # The stage is explicit (it is AWS's default): moto 5.2.5 keeps serving the old
        # version by default after UpdateSecretVersionStage moved AWSCURRENT (rotation).
        found = secrets.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except ClientError as exc:
        if is_not_found(exc) or being_deleted(exc):
            return None
        raise translate(exc, "secretsmanager:GetSecretValue", AUTOMATION_ACCOUNT) from exc
    return found["ARN"], found["SecretString"]


def require_external_id(secrets: Any, name: str) -> tuple[str, str]:
    """(secret ARN, external ID); a missing secret is a missing prerequisite, named."""
    stored = read_external_id(secrets, name)
    if stored is None:
        raise PrerequisiteMissing("secret", name, "automation")
    return stored


def read_version(secrets: Any, name: str, stage: str) -> tuple[str, str] | None:
    """(version id, external ID) of the secret's version at `stage` (AWSCURRENT, AWSPREVIOUS, ...)."""
    try:
        found = secrets.get_secret_value(SecretId=name, VersionStage=stage)
    except ClientError as exc:
        if is_not_found(exc) or being_deleted(exc):
            return None
        raise translate(exc, "secretsmanager:GetSecretValue", AUTOMATION_ACCOUNT) from exc
    return found["VersionId"], found["SecretString"]


def ensure_external_id(
    secrets: Any,
    *,
    name: str,
    cluster_id: str,
    provided: str | None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Keep the cluster's external ID in its secret; generate one only when none exists.

    An ID given in the event wins over a stored one (the operator chose it).
    The returned record never contains the ID itself.
    """
    existing = read_external_id(secrets, name)
    record: dict[str, Any] = {
        "secretName": name,
        "secretArn": existing[0] if existing else None,
        "generated": False,
        "action": "unchanged",
        "applied": not dry_run,
    }
    if existing is not None and (provided is None or provided == existing[1]):
        return record
    if existing is not None:
        record["action"] = "updated"
        if not dry_run:
            previous = read_version(secrets, name, "AWSCURRENT")
            with aws_call("secretsmanager:PutSecretValue", AUTOMATION_ACCOUNT):
                put = secrets.put_secret_value(SecretId=name, SecretString=provided)
            # Version ids, not values: compensation can move AWSCURRENT back.
            record["previousVersionId"] = previous[0] if previous else None
            record["versionId"] = put["VersionId"]
        return record
    record.update(action="created", generated=provided is None)
    if not dry_run:
        created = create_external_id(
            secrets, name=name, cluster_id=cluster_id, value=provided or generate_external_id()
        )
        if created is None:
            # A duplicate delivery created it first: its ID is the cluster's ID.
            return ensure_external_id(secrets, name=name, cluster_id=cluster_id, provided=provided)
        record["secretArn"] = created["secretArn"]
    return record


def create_external_id(secrets: Any, *, name: str, cluster_id: str, value: str) -> dict[str, Any] | None:
    """Store a new cluster's ID without looking first; None when a secret already exists."""
    try:
        created = secrets.create_secret(
            Name=name,
            SecretString=value,
            Description=f"External ID guarding the S3 access role grant of ATC cluster {cluster_id}",
            Tags=[{"Key": CLUSTER_TAG, "Value": cluster_id}],
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceExistsException":
            return None
        if being_deleted(exc):
            raise SecretDeletionPending(name) from exc
        raise translate(exc, "secretsmanager:CreateSecret", AUTOMATION_ACCOUNT) from exc
    return {"secretName": name, "secretArn": created["ARN"], "generated": True, "action": "created", "applied": True}


def delete_external_id(secrets: Any, name: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete the cluster's secret at once (a recovery window would block re-registration)."""
    existing = read_external_id(secrets, name)
    record = {"secretName": name, "action": "deleted" if existing else "unchanged", "applied": not dry_run}
    if existing and not dry_run:
        with aws_call("secretsmanager:DeleteSecret", AUTOMATION_ACCOUNT):
            secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    return record


def restore_previous(secrets: Any, name: str, record: dict[str, Any]) -> str:
    """Undo `ensure_external_id`'s update: AWSCURRENT back on the previous version.

    Only while the current version is still the one that update wrote.
    """
    current = read_version(secrets, name, "AWSCURRENT")
    if current is None or current[0] != record.get("versionId") or not record.get("previousVersionId"):
        return "skipped: the secret changed since this execution wrote it"
    with aws_call("secretsmanager:UpdateSecretVersionStage", AUTOMATION_ACCOUNT):
        secrets.update_secret_version_stage(
            SecretId=name,
            VersionStage="AWSCURRENT",
            MoveToVersionId=record["previousVersionId"],
            RemoveFromVersionId=record["versionId"],
        )
    return "restored"
