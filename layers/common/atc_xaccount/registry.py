"""The cluster registry (DynamoDB, automation account): who is registered, with what.

Deregistration is exact because of it: the registry says which external ID (by its
secret and fingerprint) belongs to which cluster, and which other registered clusters
still need the same access role in the same assume policy.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call, error_code, translate

AUTOMATION_ACCOUNT = "automation"
BY_CLUSTER_MANAGER_INDEX = "byClusterManagerAccount"

READY, FAILED, REVOKED = "READY", "FAILED", "REVOKED"


@functools.cache
def _types() -> tuple[Any, Any]:
    """boto3's DynamoDB (de)serializers, imported on first use: importing boto3 costs ~100 ms
    of cold start, which handlers that never touch the registry should not pay."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _to_ddb(item: dict[str, Any]) -> dict[str, Any]:
    serializer = _types()[0]
    return {k: serializer.serialize(v) for k, v in item.items() if v is not None}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _types()[1]
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """Decimals from DynamoDB back to ints and sets to sorted lists, so records stay JSON."""
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value).__name__ == "Decimal":
        return int(value)
    return value


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


#: Every fingerprint a cluster's external ID ever had (a string set: `ADD` needs no read).
SEEN = "externalIdFingerprintsSeen"


def get(dynamodb: Any, table: str, cluster_id: str) -> dict[str, Any] | None:
    with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
        item = dynamodb.get_item(TableName=table, Key={"clusterId": {"S": cluster_id}}, ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A registry item as the rest of the code reads it: plain JSON values, former IDs folded in."""
    return _normalized(_from_ddb(item))


def _normalized(entry: dict[str, Any]) -> dict[str, Any]:
    """Fold the seen-fingerprints set into `formerExternalIdFingerprints` (all but the current)."""
    seen = entry.pop(SEEN, None) or []
    current = entry.get("externalIdFingerprint")
    former = list(entry.get("formerExternalIdFingerprints") or [])
    former += [f for f in seen if f not in former]
    if seen or "formerExternalIdFingerprints" in entry:
        entry["formerExternalIdFingerprints"] = [f for f in former if f != current]
    return entry


def differs(existing: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """Would writing `record` change what the registry says (stamps aside)?"""
    if existing is None:
        return True
    return any(existing.get(k) != v for k, v in record.items() if k not in STAMPS and v is not None)


def update_item(table: str, record: dict[str, Any]) -> dict[str, Any]:
    """A transaction item that upserts `record` without reading it first.

    `createdAt` is kept; the current fingerprint joins the set of every fingerprint the
    cluster had, so an ID it had before (a lost secret's) stays known as its own.
    """
    fields = {k: v for k, v in record.items() if k not in ("clusterId", *STAMPS) and v is not None}
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":v{i}": _types()[0].serialize(v) for i, v in enumerate(fields.values())}
    sets = [f"#f{i} = :v{i}" for i in range(len(fields))]
    names.update({"#c": "createdAt", "#u": "updatedAt", "#e": "lastExecution", "#seen": SEEN})
    values.update({":now": {"S": now()}, ":e": {"S": str(record.get("lastExecution") or "")}})
    sets += ["#c = if_not_exists(#c, :now)", "#u = :now", "#e = :e"]
    names["#r"] = "lastError"
    expression = "SET " + ", ".join(sets) + " REMOVE #r"
    if record.get("externalIdFingerprint"):
        values[":fp"] = {"SS": [record["externalIdFingerprint"]]}
        expression += " ADD #seen :fp"
    return {
        "Update": {
            "TableName": table,
            "Key": {"clusterId": {"S": record["clusterId"]}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


#: Bookkeeping fields: a record that differs only in these is not rewritten.
STAMPS = ("createdAt", "updatedAt", "lastExecution")


def put(dynamodb: Any, table: str, record: dict[str, Any]) -> dict[str, Any]:
    """Write the cluster's record (keeping `createdAt`); an identical record is not rewritten."""
    existing = get(dynamodb, table, record["clusterId"])
    record = {**record, "formerExternalIdFingerprints": _former_fingerprints(existing, record)}
    if existing is not None and _content(existing) == _content(record):
        return {**existing, "action": "unchanged"}
    stamped = {**record, "createdAt": (existing or {}).get("createdAt") or now(), "updatedAt": now()}
    seen = {*record["formerExternalIdFingerprints"], record.get("externalIdFingerprint")} - {None}
    with aws_call("dynamodb:PutItem", AUTOMATION_ACCOUNT):
        dynamodb.put_item(TableName=table, Item=_to_ddb({**stamped, SEEN: seen or None}))
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


def registered_page(
    dynamodb: Any, table: str, limit: int, start: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of the READY clusters: (entries, the key to continue from, None at the end).

    `limit` bounds the items read (DynamoDB applies it before the filter), so a page never
    holds more than `limit` clusters however many are registered.
    """
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Limit": limit,
        "FilterExpression": "#s = :ready",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":ready": {"S": READY}},
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    with aws_call("dynamodb:Scan", AUTOMATION_ACCOUNT):
        page = dynamodb.scan(**kwargs)
    return [_from_ddb(i) for i in page["Items"]], page.get("LastEvaluatedKey")


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
