"""Leased locks in DynamoDB, one per target resource (a trust policy, a managed policy).

`UpdateAssumeRolePolicy` and `CreatePolicyVersion` have no revision check, so two
executions doing read-modify-write on the same document lose one update. Executions
take the locks of every resource they will change, atomically (all or none), and a lease
bounds how long a crashed execution can block the others.

A lock item outlives its holder: it keeps `docHash`, the hash of the document as its last
writer left it, and `leftAt`, when. Every writer under a lock notes it around each write
(`note_write`: UNKNOWN before the IAM call, the new hash after), so every release path —
onboarding, offboarding, compensation — leaves it true; a release that wrote nothing keeps
it. Under the lock, a read whose hash differs from it soon after it was written is a stale
read (IAM is eventually consistent for reads too): `fence` raises StaleRead, the caller
reads again (bounded), and nothing is written from the stale document.

The same hash That lets preflight read first and lock afterwards without reading
again (`acquire_if_unchanged`): if the hash it read is the one the last holder left, no
execution of this project has written since. Anything else (a holder, an expired lease,
a document someone changed by hand, a release that could not say what it left) makes
that fast path give up, and the workflow takes the locks the slow way and reads again.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import aws_call, error_code, translate
from atc_xaccount.errors import ResourceLocked, StaleRead

AUTOMATION_ACCOUNT = "automation"
#: Long enough for one execution's steps (with retries), short enough to recover from a crash.
DEFAULT_LEASE_SECONDS = 900
#: `docHash` of a lock whose holder could not say what it left (failure, offboarding).
UNKNOWN = "unknown"
#: `docHash` of a managed policy that does not exist.
ABSENT = "absent"
#: How long after a write a read that differs from it counts as stale. IAM's reads catch up
#: within seconds; a document still different after this was changed by someone else (a
#: human's edit), and is taken as read: the never-widen guards judge it.
FENCE_SECONDS = 30
#: Versions a lock item remembers as replaced (a stale read returns one of them).
PRIOR_VERSIONS = 8


def trust_lock_key(s3_account: str, access_role_name: str) -> str:
    return f"trust#{s3_account}#{access_role_name.lower()}"


def policy_lock_key(cm_account: str, assume_policy_name: str) -> str:
    return f"policy#{cm_account}#{assume_policy_name.lower()}"


def document_hash(document: Any) -> str:
    """A short, stable hash of a policy document (key order and whitespace do not matter)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def policy_hash(default_version: str | None, document: Any) -> str:
    """Hash of a managed policy's state: its default version and that version's document."""
    if default_version is None:
        return ABSENT
    return document_hash({"version": default_version, "document": document})


def _take(table: str, key: str, owner: str, expires: int, condition: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": {"lockKey": {"S": key}},
            "UpdateExpression": "SET #o = :owner, expiresAt = :expires",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner}, ":expires": {"N": str(expires)}, **values},
        }
    }


def acquire(
    dynamodb: Any, table: str, keys: list[str], owner: str, *, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> dict[str, Any]:
    """Take every lock in `keys` for `owner`, or none; re-entrant; an expired lease is taken over."""
    now = int(time.time())
    held = sorted(set(keys))
    condition = "attribute_not_exists(#o) OR expiresAt < :now OR #o = :owner"
    items = [_take(table, key, owner, now + lease_seconds, condition, {":now": {"N": str(now)}}) for key in held]
    try:
        dynamodb.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException":
            busy = _first_holder(dynamodb, table, held, owner)
            raise ResourceLocked(busy[0], busy[1]) from exc
        raise translate(exc, "dynamodb:TransactWriteItems", AUTOMATION_ACCOUNT) from exc
    return {"keys": held, "owner": owner, "expiresAt": now + lease_seconds}


def acquire_if_unchanged(
    dynamodb: Any, table: str, seen: dict[str, str], owner: str, *, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> dict[str, Any] | None:
    """Take the locks only if nobody holds them and each document is as its last holder left it.

    `seen` maps each lock key to the hash of the document just read. None means "not
    taken, for whatever reason": the caller takes the slow path (`acquire`, then read again).
    """
    now = int(time.time())
    condition = "attribute_not_exists(lockKey) OR (attribute_not_exists(#o) AND docHash = :seen)"
    items = [
        _take(table, key, owner, now + lease_seconds, condition, {":seen": {"S": seen[key]}}) for key in sorted(seen)
    ]
    try:
        dynamodb.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException":
            return None
        raise translate(exc, "dynamodb:TransactWriteItems", AUTOMATION_ACCOUNT) from exc
    return {"keys": sorted(seen), "owner": owner, "expiresAt": now + lease_seconds}


def _first_holder(dynamodb: Any, table: str, keys: list[str], owner: str) -> tuple[str, str | None]:
    for key in keys:
        with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
            item = dynamodb.get_item(TableName=table, Key={"lockKey": {"S": key}}).get("Item")
        if item and "owner" in item and item["owner"]["S"] != owner:
            return key, item["owner"]["S"]
    return keys[0], None


def release_items(
    table: str,
    keys: list[str],
    owner: str,
    hashes: dict[str, str] | None = None,
    written: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Transaction items that release `owner`'s locks and record what each holder left.

    A key without a hash keeps the `docHash` its writers noted (`note_write`).
    """
    items = []
    for key in sorted(set(keys)):
        values: dict[str, Any] = {":owner": {"S": owner}}
        expression = "REMOVE #o, expiresAt"
        if key in (hashes or {}):
            values[":h"] = {"S": (hashes or {})[key]}
            expression = "SET docHash = :h " + expression
            if key in (written or {}):  # written by this holder just now: the fence's window starts
                values[":now"] = {"N": str(int(time.time()))}
                values[":prior"] = {"L": [{"S": h} for h in (written or {})[key][:PRIOR_VERSIONS]]}
                expression = expression.replace(
                    "SET docHash = :h ", "SET docHash = :h, leftAt = :now, priorHashes = :prior "
                )
        items.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": {"lockKey": {"S": key}},
                    "UpdateExpression": expression,
                    "ConditionExpression": "#o = :owner",
                    "ExpressionAttributeNames": {"#o": "owner"},
                    "ExpressionAttributeValues": values,
                }
            }
        )
    return items


def note_write(dynamodb: Any, table: str, key: str, owner: str, doc_hash: str, prior: list[str] | None = None) -> None:
    """Record, while holding the lock, what the document is now, when, and what it was before
    (`prior`, newest first: the versions a stale read can still return)."""
    with aws_call("dynamodb:UpdateItem", AUTOMATION_ACCOUNT):
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"lockKey": {"S": key}},
                UpdateExpression="SET docHash = :h, leftAt = :now, priorHashes = :prior",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":h": {"S": doc_hash},
                    ":now": {"N": str(int(time.time()))},
                    ":owner": {"S": owner},
                    ":prior": {"L": [{"S": h} for h in (prior or [])[:PRIOR_VERSIONS]]},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            # Not our lock (a lease taken over): the new holder reads and notes for itself.


def fence(dynamodb: Any, table: str, key: str, read_hash: str, *, now: float | None = None) -> list[str]:
    """Raise StaleRead when the document read is a version our writers replaced moments ago.

    Returns what a write over this read should record as `prior`: this version, then the
    ones before it. A document that is neither the last written nor one it replaced was
    changed by someone else (a human's edit): taken as read; the guards judge it.
    """
    with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
        item = dynamodb.get_item(TableName=table, Key={"lockKey": {"S": key}}, ConsistentRead=True).get("Item")
    left = ((item or {}).get("docHash") or {}).get("S")
    prior = [v["S"] for v in ((item or {}).get("priorHashes") or {}).get("L", []) if "S" in v]
    history = [h for h in [left, *prior] if h not in (None, UNKNOWN)]
    if left not in (None, UNKNOWN, read_hash) and read_hash in prior:
        written = float(((item or {}).get("leftAt") or {}).get("N", 0))
        if (now if now is not None else time.time()) - written < FENCE_SECONDS:
            raise StaleRead(key, read_hash, str(left))
    return [read_hash, *[h for h in history if h != read_hash]][:PRIOR_VERSIONS]


def release(
    dynamodb: Any,
    table: str,
    keys: list[str],
    owner: str,
    *,
    hashes: dict[str, str] | None = None,
    also: list[dict[str, Any]] | None = None,
    written: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Drop the locks this owner holds, in one transaction with `also` (e.g. the registry write).

    A lock without a hash in `hashes` keeps what its writers noted (nothing written: the
    previous holder's hash still holds).
    A lock taken over after lease expiry is left alone; `also` is then written on its own.
    """
    items = release_items(table, keys, owner, hashes, written)
    if not items and not also:
        return {"released": [], "owner": owner}
    try:
        dynamodb.transact_write_items(TransactItems=[*(also or []), *items])
        return {"released": sorted(set(keys)), "owner": owner}
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException" or not items:
            raise translate(exc, "dynamodb:TransactWriteItems", AUTOMATION_ACCOUNT) from exc
    # Some lock is no longer ours: write the rest one by one, skipping what is not.
    for item in also or []:
        with aws_call("dynamodb:TransactWriteItems", AUTOMATION_ACCOUNT):
            dynamodb.transact_write_items(TransactItems=[item])
    released = []
    for item in items:
        update = item["Update"]
        try:
            dynamodb.update_item(**update)
            released.append(update["Key"]["lockKey"]["S"])
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, "dynamodb:UpdateItem", AUTOMATION_ACCOUNT) from exc
    return {"released": released, "owner": owner}
