"""The cluster registry (DynamoDB, automation account): who is registered, with what.

Deregistration is exact because of it: the registry says which external ID (by its
secret and fingerprint) belongs to which cluster, and which other registered clusters
still need the same access role in the same assume policy.
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call, error_code, translate

AUTOMATION_ACCOUNT = "automation"
BY_CLUSTER_MANAGER_INDEX = "byClusterManagerAccount"

READY, FAILED, REVOKED = "READY", "FAILED", "REVOKED"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """Decimals from DynamoDB back to ints, so records stay JSON."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value).__name__ == "Decimal":
        return int(value)
    return value


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def get(dynamodb: Any, table: str, cluster_id: str) -> dict[str, Any] | None:
    with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
        item = dynamodb.get_item(TableName=table, Key={"clusterId": {"S": cluster_id}}, ConsistentRead=True).get("Item")
    return _from_ddb(item) if item else None


#: Bookkeeping fields: a record that differs only in these is not rewritten.
STAMPS = ("createdAt", "updatedAt", "lastExecution")


def put(dynamodb: Any, table: str, record: dict[str, Any]) -> dict[str, Any]:
    """Write the cluster's record (keeping `createdAt`); an identical record is not rewritten."""
    existing = get(dynamodb, table, record["clusterId"])
    record = {**record, "formerExternalIdFingerprints": _former_fingerprints(existing, record)}
    if existing is not None and _content(existing) == _content(record):
        return {**existing, "action": "unchanged"}
    stamped = {**record, "createdAt": (existing or {}).get("createdAt") or now(), "updatedAt": now()}
    with aws_call("dynamodb:PutItem", AUTOMATION_ACCOUNT):
        dynamodb.put_item(TableName=table, Item=_to_ddb(stamped))
    return {**stamped, "action": "created" if existing is None else "updated"}


def _former_fingerprints(existing: dict[str, Any] | None, record: dict[str, Any]) -> list[str]:
    """Fingerprints of external IDs the cluster had before this one.

    An ID can outlive its secret (a lost secret is repaired with a new ID while the old one
    still serves the running access key); deregistration removes those too, by fingerprint.
    """
    former = list((existing or {}).get("formerExternalIdFingerprints") or [])
    previous = (existing or {}).get("externalIdFingerprint")
    if previous and previous != record.get("externalIdFingerprint") and previous not in former:
        former.append(previous)
    return [f for f in former if f != record.get("externalIdFingerprint")]


def _content(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in STAMPS and k != "action" and v is not None}


def set_state(
    dynamodb: Any, table: str, cluster_id: str, state: str, execution: str | None, error: str | None = None
) -> None:
    """Move an existing record to `state` (a cluster never recorded stays unrecorded)."""
    names = {"#s": "state", "#e": "lastExecution", "#u": "updatedAt", "#r": "lastError"}
    values: dict[str, Any] = {":s": {"S": state}, ":e": {"S": execution or ""}, ":u": {"S": now()}}
    expression = "SET #s = :s, #e = :e, #u = :u"
    if error is not None:
        values[":r"] = {"S": error[:1000]}
        expression += ", #r = :r"
    else:
        expression += " REMOVE #r"
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"clusterId": {"S": cluster_id}},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(clusterId)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise translate(exc, "dynamodb:UpdateItem", AUTOMATION_ACCOUNT) from exc


def clusters_of_cluster_manager(dynamodb: Any, table: str, account: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with aws_call("dynamodb:Query", AUTOMATION_ACCOUNT):
        for page in dynamodb.get_paginator("query").paginate(
            TableName=table,
            IndexName=BY_CLUSTER_MANAGER_INDEX,
            KeyConditionExpression="clusterManagerAccountId = :a",
            ExpressionAttributeValues={":a": {"S": account}},
        ):
            items.extend(_from_ddb(i) for i in page["Items"])
    return items


def registered(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every cluster whose access is meant to exist (state READY)."""
    items: list[dict[str, Any]] = []
    with aws_call("dynamodb:Scan", AUTOMATION_ACCOUNT):
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="#s = :ready",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":ready": {"S": READY}},
        ):
            items.extend(_from_ddb(i) for i in page["Items"])
    return sorted(items, key=lambda i: i["clusterId"])
