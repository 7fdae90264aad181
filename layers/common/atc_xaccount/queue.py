"""The document queues of group commit (docs/converge.md), in the locks table.

One item per shared document (`queue#<lock key>`): each onboarding that must change the
document puts its intent there (`i#<cluster>`: its execution, when it queued, its request
without the external ID) and then tries the document's lock. Whoever holds it serves the
oldest pending intents (up to BATCH) in one write and, in the transaction that releases
the lock, replaces each served intent by its result (`r#<cluster>`); the others find
their result on their next attempt. One attribute per cluster, so concurrent enqueues of
different clusters never overwrite each other.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from atc_xaccount.aws_errors import aws_call
from atc_xaccount.ddb_types import deserialize, serialize

AUTOMATION_ACCOUNT = "automation"
#: Intents one commit serves at most (its transaction and expressions stay small).
BATCH = 40
#: How long a commit may hold a document's lock: one Lambda invocation (timeout 60 s) and a margin.
LEASE_SECONDS = 120


def queue_key(lock_key: str) -> str:
    return f"queue#{lock_key}"


def _intent(cluster_id: str) -> str:
    return f"i#{cluster_id}"


def _result(cluster_id: str) -> str:
    return f"r#{cluster_id}"


def enqueue(
    dynamodb: Any, table: str, lock_key: str, cluster_id: str, intent: dict[str, Any], *, replace: bool = False
) -> None:
    """Put this cluster's intent on the document's queue (`replace`: over an earlier execution's)."""
    with aws_call("dynamodb:UpdateItem", AUTOMATION_ACCOUNT):
        dynamodb.update_item(
            TableName=table,
            Key={"lockKey": {"S": queue_key(lock_key)}},
            UpdateExpression="SET #i = :v" if replace else "SET #i = if_not_exists(#i, :v)",
            ExpressionAttributeNames={"#i": _intent(cluster_id)},
            ExpressionAttributeValues={":v": serialize({**intent, "queuedAt": time.time_ns() // 1_000_000})},
        )


def read(dynamodb: Any, table: str, lock_key: str) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """(pending intents oldest first, results by cluster), read consistently."""
    with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
        item = dynamodb.get_item(TableName=table, Key={"lockKey": {"S": queue_key(lock_key)}}, ConsistentRead=True).get(
            "Item"
        )
    pending, results = [], {}
    for name, value in (item or {}).items():
        if name.startswith("i#"):
            pending.append((name[2:], _plain(deserialize(value))))
        elif name.startswith("r#"):
            results[name[2:]] = _plain(deserialize(value))
    pending.sort(key=lambda entry: (int(entry[1].get("queuedAt", 0)), entry[0]))
    return pending, results


def _plain(value: Any) -> Any:
    """DynamoDB's numbers back as ints (results travel on as JSON)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def served_item(table: str, lock_key: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The transaction item that replaces served intents by their results."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    removes, sets = [], []
    for n, (cluster, result) in enumerate(sorted(results.items())):
        names[f"#i{n}"], names[f"#r{n}"] = _intent(cluster), _result(cluster)
        values[f":r{n}"] = serialize(result)
        removes.append(f"#i{n}")
        sets.append(f"#r{n} = :r{n}")
    return {
        "Update": {
            "TableName": table,
            "Key": {"lockKey": {"S": queue_key(lock_key)}},
            "UpdateExpression": f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def forget_result(dynamodb: Any, table: str, lock_key: str, cluster_id: str) -> None:
    """Drop a result once its cluster has taken it (the queue item stays small)."""
    with aws_call("dynamodb:UpdateItem", AUTOMATION_ACCOUNT):
        dynamodb.update_item(
            TableName=table,
            Key={"lockKey": {"S": queue_key(lock_key)}},
            UpdateExpression="REMOVE #r",
            ExpressionAttributeNames={"#r": _result(cluster_id)},
        )


def withdraw(dynamodb: Any, table: str, lock_key: str, cluster_id: str, execution: str) -> dict[str, Any] | None:
    """Take this execution's intent off the queue (it failed); its result if it was served first."""
    from botocore.exceptions import ClientError

    from atc_xaccount.aws_errors import error_code

    with aws_call("dynamodb:UpdateItem", AUTOMATION_ACCOUNT):
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"lockKey": {"S": queue_key(lock_key)}},
                UpdateExpression="REMOVE #i",
                ConditionExpression="#i.#e = :e",
                ExpressionAttributeNames={"#i": _intent(cluster_id), "#e": "execution"},
                ExpressionAttributeValues={":e": {"S": execution}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # (translated by aws_call)
    _, results = read(dynamodb, table, lock_key)
    result = results.get(cluster_id)
    return dict(result) if result and result.get("execution") == execution else None
