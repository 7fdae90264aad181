"""Custody of the access key this project created for a cluster (automation account).

The key's id and secret open it (transfers, browse): they are kept in one secret per
cluster beside its external ID, `<prefix>/<cluster>/access-key`, as
`{"id": ..., "secret": ..., "url": ...}`. The secret is written *before* the key is
created, so a step that dies between the two finds its key again by id; it is deleted
after the key (deregistration). The registry's `accessKey` attribute says which key is
ours and how it was last found (`access_keys.key_record`): never its secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount import ddb_types
from atc_xaccount.aws_errors import aws_call, error_code, is_not_found, translate
from atc_xaccount.errors import AwsOperationFailed
from atc_xaccount.external_ids import CLUSTER_TAG

AUTOMATION_ACCOUNT = "automation"


def key_secret_name(prefix: str, cluster_id: str) -> str:
    return f"{prefix}/{cluster_id}/access-key"


@dataclass(frozen=True)
class HeldKey:
    """The key this project holds for a cluster: its id, secret, Node API and where it is kept."""

    key_id: str
    secret: str = field(repr=False)
    url: str
    secret_arn: str


def read_key(secrets: Any, name: str) -> HeldKey | None:
    try:
        found = secrets.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise translate(exc, "secretsmanager:GetSecretValue", AUTOMATION_ACCOUNT) from exc
    try:
        value = json.loads(found["SecretString"])
        return HeldKey(str(value["id"]), str(value["secret"]), str(value.get("url", "")), found["ARN"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AwsOperationFailed(
            "secretsmanager:GetSecretValue", AUTOMATION_ACCOUNT, "MalformedSecret", f"{name} is not an access key"
        ) from exc


def create_key(secrets: Any, name: str, cluster_id: str, key_id: str, key_secret: str, url: str) -> HeldKey:
    """Keep a new key's id and secret; when a duplicate delivery kept one first, that one wins."""
    value = json.dumps({"id": key_id, "secret": key_secret, "url": url})
    try:
        created = secrets.create_secret(
            Name=name,
            SecretString=value,
            Description=f"Node API access key of ATC cluster {cluster_id}, created by atc-xaccount",
            Tags=[{"Key": CLUSTER_TAG, "Value": cluster_id}],
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceExistsException":
            held = read_key(secrets, name)
            if held is not None:
                return held
        raise translate(exc, "secretsmanager:CreateSecret", AUTOMATION_ACCOUNT) from exc
    return HeldKey(key_id, key_secret, url, created["ARN"])


def delete_key(secrets: Any, name: str) -> bool:
    """Forget the key's id and secret at once (True when there was a secret)."""
    try:
        with aws_call("secretsmanager:DeleteSecret", AUTOMATION_ACCOUNT):
            secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    except AwsOperationFailed as exc:
        if exc.code == "ResourceNotFoundException":
            return False
        raise
    return True


#: The registry attribute holding the key this project created (`access_keys.key_record`).
ACCESS_KEY = "accessKey"


def set_registry_record(dynamodb: Any, table: str, cluster_id: str, record: dict[str, Any] | None) -> None:
    """Keep (or, with None, forget) the cluster's access key on its existing registry record."""
    names = {"#k": ACCESS_KEY}
    kwargs: dict[str, Any] = {"UpdateExpression": "REMOVE #k"}
    if record is not None:
        kwargs = {"UpdateExpression": "SET #k = :k", "ExpressionAttributeValues": {":k": ddb_types.serialize(record)}}
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"clusterId": {"S": cluster_id}},
            ConditionExpression="attribute_exists(clusterId)",
            ExpressionAttributeNames=names,
            **kwargs,
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise translate(exc, "dynamodb:UpdateItem", AUTOMATION_ACCOUNT) from exc
