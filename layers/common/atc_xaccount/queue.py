"""The document queues of group commit (docs/converge.md), in the locks table.

One item per shared document (`queue#<lock key>`): each onboarding that must change the
document puts its intent there (`i#<cluster>`: its execution, when it queued, its request
without the external ID) and then tries the document's lock. Whoever holds it serves the
oldest pending intents (up to BATCH) in one write and, in the transaction that releases
the lock, replaces each served intent by its result (`r#<cluster>`); the others find
their result on their next attempt. One attribute per cluster, so concurrent enqueues of
different clusters never overwrite each other.

A bulk file's phase 1 *reserves*: it queues each row's intent before any row's onboarding
runs (`reservedBy`: the bulk's tag, `expiresAt`), so the first writer of each document
serves the whole file's rows at once (steps/reserve.py). A reservation is served only by a
writer of the same bulk (`servable`): if the bulk never runs its rows (aborted between the
phases), no writer ever serves them, and once expired the next writer drops them.
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
#: How long a bulk's reservation waits for its bulk's writers (a file of 10,000 rows runs for hours).
RESERVATION_SECONDS = 24 * 3600


def now_ms() -> int:
    return time.time_ns() // 1_000_000


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
            ExpressionAttributeValues={":v": serialize({**intent, "queuedAt": now_ms()})},
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


def servable(
    pending: list[tuple[str, dict[str, Any]]], tag: str | None, now: int
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(the intents a writer of bulk `tag` (None: no bulk's) serves, oldest first; the expired
    reservations it drops). Every running execution's intent is served; a reservation only by
    its own bulk's writers, and only before it expires."""
    serve: list[tuple[str, dict[str, Any]]] = []
    expired: list[str] = []
    for cluster, intent in pending:
        reserved_by = intent.get("reservedBy")
        if reserved_by is None:
            serve.append((cluster, intent))
        elif int(intent.get("expiresAt") or 0) <= now:
            expired.append(cluster)
        elif reserved_by == tag:
            serve.append((cluster, intent))
    return serve, expired


def held_by(dynamodb: Any, table: str, keys: dict[str, str], cluster_id: str, owner: str | None) -> set[str]:
    """The names of `keys` (name -> lock key) on whose queue execution `owner` has this
    cluster's intent queued or its result served."""
    found = set()
    for name, lock_key in keys.items():
        pending, results = read(dynamodb, table, lock_key)
        queued, served = dict(pending).get(cluster_id) or {}, results.get(cluster_id) or {}
        if owner in (queued.get("execution"), served.get("execution")):
            found.add(name)
    return found


def _plain(value: Any) -> Any:
    """DynamoDB's numbers back as ints (results travel on as JSON)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def served_item(
    table: str, lock_key: str, results: dict[str, dict[str, Any]], dropped: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """The transaction item that replaces served intents by their results (and removes `dropped`,
    expired reservations)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    removes, sets = [], []
    for n, (cluster, result) in enumerate(sorted(results.items())):
        names[f"#i{n}"], names[f"#r{n}"] = _intent(cluster), _result(cluster)
        values[f":r{n}"] = serialize(result)
        removes.append(f"#i{n}")
        sets.append(f"#r{n} = :r{n}")
    for n, cluster in enumerate(sorted(set(dropped) - set(results))):
        names[f"#d{n}"] = _intent(cluster)
        removes.append(f"#d{n}")
    expression = (f"SET {', '.join(sets)} " if sets else "") + f"REMOVE {', '.join(removes)}"
    update: dict[str, Any] = {
        "TableName": table,
        "Key": {"lockKey": {"S": queue_key(lock_key)}},
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
    }
    if values:
        update["ExpressionAttributeValues"] = values
    return {"Update": update}


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
