"""An external ID an event gave, moved out of the workflow's state into the cluster's secret.

Step Functions keeps every state's input and output for 90 days (readable with
`states:GetExecutionHistory`), and bulk items and ResultWriter files are S3 objects. So the
first step that may write it (Validate, or bulk Prepare for a file's rows) stores the ID
in the cluster's secret and only its fingerprint travels on:

- a cluster without a secret: the secret is created with the ID (Secrets Manager makes a
  secret's first version AWSCURRENT whatever labels it is given); nothing grants it yet,
  and a failed onboarding deletes the secret it created;
- a cluster with a secret: the ID is a new version labelled `STAGED` (AWSCURRENT and every
  grant stay as they are). MergeTrust promotes it to AWSCURRENT only after its trust write
  succeeded, so a failed trust write leaves the secret, the trust and the registry agreeing
  on the old ID. A staged version nothing promoted is inert: only a request carrying its
  fingerprint is ever granted it, and the next staging replaces it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call, error_code, translate
from atc_xaccount.external_ids import AUTOMATION_ACCOUNT, create_external_id, read_version

#: The staging label of an ID a request gave, until MergeTrust grants and promotes it.
STAGED = "ATCXACCOUNT_REQUESTED"
CURRENT = "AWSCURRENT"


def stage(secrets: Any, *, name: str, cluster_id: str, value: str) -> dict[str, Any]:
    """Store `value` for the cluster without changing which ID it has; never returns the ID.

    `action`: "current" (it is the cluster's ID already: nothing written), "created" (a new
    secret holds it), "staged" (a STAGED version holds it), "unchanged" (staged already).
    """
    current = read_version(secrets, name, CURRENT)
    if current is not None and current[1] == value:
        return {"action": "current", "secretCreated": False}
    if current is None:
        created = create_external_id(secrets, name=name, cluster_id=cluster_id, value=value)
        if created is not None:
            return {"action": "created", "secretCreated": True}
        # A duplicate delivery created it first (or it exists without a current version).
        return stage_existing(secrets, name=name, value=value, current=read_version(secrets, name, CURRENT))
    return stage_existing(secrets, name=name, value=value, current=current)


def stage_existing(secrets: Any, *, name: str, value: str, current: tuple[str, str] | None) -> dict[str, Any]:
    if current is not None and current[1] == value:
        return {"action": "current", "secretCreated": False}
    staged = read_version(secrets, name, STAGED)
    if staged is not None and staged[1] == value:
        return {"action": "unchanged", "secretCreated": False}
    with aws_call("secretsmanager:PutSecretValue", AUTOMATION_ACCOUNT):
        secrets.put_secret_value(SecretId=name, SecretString=value, VersionStages=[STAGED])
    return {"action": "staged", "secretCreated": False}


def read_staged(secrets: Any, name: str) -> tuple[str, str] | None:
    """(version id, value) of the staged ID, or None."""
    return read_version(secrets, name, STAGED)


def promote(secrets: Any, name: str, version_id: str, current_version: str | None) -> dict[str, Any]:
    """Make the staged version the cluster's ID (AWSCURRENT; the old one becomes AWSPREVIOUS).

    The record holds version ids only, so compensation can move AWSCURRENT back.
    """
    with aws_call("secretsmanager:UpdateSecretVersionStage", AUTOMATION_ACCOUNT):
        moved: dict[str, Any] = {"SecretId": name, "VersionStage": CURRENT, "MoveToVersionId": version_id}
        if current_version:
            moved["RemoveFromVersionId"] = current_version
        secrets.update_secret_version_stage(**moved)
        secrets.update_secret_version_stage(SecretId=name, VersionStage=STAGED, RemoveFromVersionId=version_id)
    return {
        "secretName": name,
        "action": "updated" if current_version else "created",
        "previousVersionId": current_version,
        "versionId": version_id,
        "generated": False,
        "applied": True,
    }


def discard(secrets: Any, name: str) -> str:
    """Take the STAGED label off (compensation of an onboarding that never granted it)."""
    staged = read_staged(secrets, name)
    if staged is None:
        return "nothing staged"
    try:
        secrets.update_secret_version_stage(SecretId=name, VersionStage=STAGED, RemoveFromVersionId=staged[0])
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return "nothing staged"
        raise translate(exc, "secretsmanager:UpdateSecretVersionStage", AUTOMATION_ACCOUNT) from exc
    return "discarded"
