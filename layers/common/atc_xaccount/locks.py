"""Leased locks in DynamoDB, one per target resource (a trust policy, a managed policy).

`UpdateAssumeRolePolicy` and `CreatePolicyVersion` have no revision check, so two
executions doing read-modify-write on the same document lose one update. Executions
take the locks of every resource they will change, atomically (all or none), before
their preflight; a lease bounds how long a crashed execution can block the others.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call
from atc_xaccount.errors import ResourceLocked

AUTOMATION_ACCOUNT = "automation"
#: Long enough for one execution's steps (with retries), short enough to recover from a crash.
DEFAULT_LEASE_SECONDS = 900


def trust_lock_key(s3_account: str, access_role_name: str) -> str:
    return f"trust#{s3_account}#{access_role_name.lower()}"


def policy_lock_key(cm_account: str, assume_policy_name: str) -> str:
    return f"policy#{cm_account}#{assume_policy_name.lower()}"


def acquire(
    dynamodb: Any, table: str, keys: list[str], owner: str, *, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> dict[str, Any]:
    """Take every lock in `keys` for `owner`, or none; re-entrant for the same owner."""
    now = int(time.time())
    items = [
        {
            "Put": {
                "TableName": table,
                "Item": {
                    "lockKey": {"S": key},
                    "owner": {"S": owner},
                    "expiresAt": {"N": str(now + lease_seconds)},
                },
                "ConditionExpression": "attribute_not_exists(lockKey) OR expiresAt < :now OR #o = :owner",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":now": {"N": str(now)}, ":owner": {"S": owner}},
            }
        }
        for key in sorted(set(keys))
    ]
    try:
        dynamodb.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            busy = _first_holder(dynamodb, table, sorted(set(keys)), owner)
            raise ResourceLocked(busy[0], busy[1]) from exc
        raise
    return {"keys": sorted(set(keys)), "owner": owner, "expiresAt": now + lease_seconds}


def _first_holder(dynamodb: Any, table: str, keys: list[str], owner: str) -> tuple[str, str | None]:
    for key in keys:
        with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
            item = dynamodb.get_item(TableName=table, Key={"lockKey": {"S": key}}).get("Item")
        if item and item["owner"]["S"] != owner:
            return key, item["owner"]["S"]
    return keys[0], None


def release(dynamodb: Any, table: str, keys: list[str], owner: str) -> dict[str, Any]:
    """Drop the locks this owner holds; a lock taken over after lease expiry is left alone."""
    released = []
    for key in sorted(set(keys)):
        try:
            dynamodb.delete_item(
                TableName=table,
                Key={"lockKey": {"S": key}},
                ConditionExpression="attribute_not_exists(lockKey) OR #o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
            released.append(key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
    return {"released": released, "owner": owner}
