"""The cluster registry (DynamoDB, automation account): who is registered, with what.

Deregistration is exact because of it: the registry says which external ID (by its
secret and fingerprint) belongs to which cluster, and which other registered clusters
still need the same access role in the same assume policy. (What an assume policy was
before atc-xaccount changed it is kept beside the clusters: `provenance.py`.)
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount import ddb_types
from atc_xaccount.aws_errors import aws_call, error_code, retried, translate
from atc_xaccount.errors import AwsOperationFailed

AUTOMATION_ACCOUNT = "automation"
BY_CLUSTER_MANAGER_INDEX = "byClusterManagerAccount"

READY, FAILED, REVOKED = "READY", "FAILED", "REVOKED"
#: Deregistration started: recorded before its first revoke write, so nothing (an audit's
#: repair, a stale registration) grants the cluster's access back until it finishes.
REVOKING = "REVOKING"
#: The fields of a cluster's request the registry keeps (camelCase, as in the event):
#: what an audit, a rotation or the doctor rebuilds the request from.
REQUEST_FIELDS = (
    "clusterId",
    "clusterManagerAccountId",
    "s3AccountId",
    "buckets",
    "nodeRoleName",
    "accessRoleName",
    "assumePolicyName",
    "accessPolicyName",
    "nodeApi",
)


def _to_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: ddb_types.serialize(v) for k, v in item.items() if v is not None}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(ddb_types.deserialize(v)) for k, v in item.items()}


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

#: Registry growth (issue 16 item 8): a REVOKED record carries `expiresAt` (epoch seconds),
#: the table's TTL attribute, so DynamoDB deletes it after REVOKED_RETENTION_SECONDS (and,
#: by its own schedule, usually within a few days after that). 90 days: Step Functions keeps
#: an execution's name that long, and `register` names executions after the record's
#: `generation`, so a name derived from a lost generation has been forgotten too; it also
#: outlasts EventBridge's 24 hours of retries and the dead-letter queues' 14 days (a
#: replayed Cluster Deregistered still reads "already deregistered"). Any write that makes
#: the record meaningful again (READY, or what a failed compensation left) removes it.
EXPIRES_AT = "expiresAt"
REVOKED_RETENTION_SECONDS = 90 * 24 * 3600


def expires_at(now_epoch: float | None = None) -> int:
    """When a record revoked now expires."""
    return int(now_epoch if now_epoch is not None else time.time()) + REVOKED_RETENTION_SECONDS


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
    values = {f":v{i}": ddb_types.serialize(v) for i, v in enumerate(fields.values())}
    sets = [f"#f{i} = :v{i}" for i in range(len(fields))]
    names.update({"#c": "createdAt", "#u": "updatedAt", "#e": "lastExecution", "#seen": SEEN})
    values.update({":now": {"S": now()}, ":e": {"S": str(record.get("lastExecution") or "")}})
    sets += ["#c = if_not_exists(#c, :now)", "#u = :now", "#e = :e"]
    names["#r"], names["#x"] = "lastError", EXPIRES_AT
    expression = "SET " + ", ".join(sets) + " REMOVE #r, #x"
    adds = []
    if record.get("externalIdFingerprint"):
        values[":fp"] = {"SS": [record["externalIdFingerprint"]]}
        adds.append("#seen :fp")
    if placement(record) is not None:
        names["#pl"], values[":pl"] = PLACEMENTS, {"SS": [placement(record) or ""]}
        adds.append("#pl :pl")
    if adds:
        expression += " ADD " + ", ".join(adds)
    return {
        "Update": {
            "TableName": table,
            "Key": {"clusterId": {"S": record["clusterId"]}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


#: Every place a cluster was ever granted in (a string set of `placement` JSON): a cluster
#: re-registered against other accounts or names is revoked everywhere on deregistration.
PLACEMENTS = "placements"
PLACEMENT_FIELDS = ("clusterManagerAccountId", "s3AccountId", "nodeRoleName", "accessRoleName", "assumePolicyName")


def placement(record: dict[str, Any]) -> str | None:
    """The accounts and names a registration granted in, as canonical JSON (None: incomplete)."""
    if any(not record.get(k) for k in PLACEMENT_FIELDS):
        return None
    return json.dumps({k: record[k] for k in PLACEMENT_FIELDS}, sort_keys=True, separators=(",", ":"))


def former_placements(entry: dict[str, Any]) -> list[dict[str, str]]:
    """The placements of a registry entry other than its current one."""
    current = placement(entry)
    return [json.loads(p) for p in sorted(entry.get(PLACEMENTS) or []) if p != current]


#: Bookkeeping fields: a record that differs only in these is not rewritten.
STAMPS = ("createdAt", "updatedAt", "lastExecution")
#: How many deregistrations of the cluster completed (absent: none); kept across re-registrations.
GENERATION = "generation"


def generation(entry: dict[str, Any] | None, *, deregistering: bool = False) -> int:
    """The registration a request is about: the current generation, or for a deregistration of
    a cluster already REVOKED, the one that deregistration ended (so its duplicate is one)."""
    if entry is None:
        return 0
    current = int(entry.get(GENERATION) or 0)
    return current - 1 if deregistering and entry.get("state") == REVOKED and current > 0 else current


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


def rotated_item(table: str, existing: dict[str, Any], fingerprint: str, execution: str | None) -> dict[str, Any]:
    """A transaction item: the cluster's ID is now the one of `fingerprint` (a finished rotation).

    The ID it replaces stays known as the cluster's (`formerExternalIdFingerprints`), so a
    deregistration still withdraws it wherever it is left granted.
    """
    record = {"clusterId": existing["clusterId"], "externalIdFingerprint": fingerprint}
    record["formerExternalIdFingerprints"] = _former_fingerprints(existing, record)
    return update_item(table, {**record, "lastExecution": execution})


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
    sets, removes = ["#s = :s", "#e = :e", "#u = :u"], []
    if error is not None:
        values[":r"] = {"S": error[:1000]}
        sets.append("#r = :r")
    else:
        removes.append("#r")
    condition = "attribute_exists(clusterId)"
    if state == REVOKED:  # revoked everywhere it was granted: a later registration starts afresh
        names["#pl"] = PLACEMENTS
        removes.append("#pl")
    if state == REVOKED and error is None:
        # A completed deregistration starts the cluster's next generation (`register` names its
        # execution after it, so a re-registration is no duplicate); a retried Forget counts once.
        names["#g"] = GENERATION
        values.update({":zero": {"N": "0"}, ":one": {"N": "1"}})
        sets.append("#g = if_not_exists(#g, :zero) + :one")
        condition += " AND NOT (#s = :s AND #e = :e)"
        # Nothing left to remember for long: DynamoDB's TTL deletes the record.
        names["#x"], values[":x"] = EXPIRES_AT, {"N": str(expires_at())}
        sets.append("#x = :x")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"clusterId": {"S": cluster_id}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise translate(exc, "dynamodb:UpdateItem", AUTOMATION_ACCOUNT) from exc


def mark_revoking(dynamodb: Any, table: str, cluster_id: str, execution: str | None) -> None:
    """Record the intent to deregister before the first revoke write (idempotent).

    From here on nothing grants the cluster's access again (onboarding refuses it, the
    audit reports it and only ever re-drives the deregistration) until Forget says REVOKED.
    """
    with aws_call("dynamodb:UpdateItem", AUTOMATION_ACCOUNT):
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"clusterId": {"S": cluster_id}},
                UpdateExpression="SET #s = :s, #e = :e, #u = :u",
                ConditionExpression="attribute_exists(clusterId) AND #s <> :revoked",
                ExpressionAttributeNames={"#s": "state", "#e": "lastExecution", "#u": "updatedAt"},
                ExpressionAttributeValues={
                    ":s": {"S": REVOKING},
                    ":e": {"S": execution or ""},
                    ":u": {"S": now()},
                    ":revoked": {"S": REVOKED},
                },
            )
        except ClientError as exc:
            # Already REVOKED (a re-delivered deregistration that finished): nothing to record.
            if error_code(exc) != "ConditionalCheckFailedException":
                raise


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


#: What the audit reads: access meant to exist (READY), a deregistration that did not finish
#: (REVOKING), and changes a failed compensation left (`leftBehind`).
AUDITED_FILTER = "#s = :ready OR #s = :revoking OR attribute_exists(leftBehind)"
AUDITED_VALUES = {":ready": {"S": READY}, ":revoking": {"S": REVOKING}}


def registered_page(
    dynamodb: Any, table: str, limit: int, start: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of the clusters to audit (READY, REVOKING, or with changes a failed compensation left):
    (entries, the key to continue from, None at the end).

    `limit` bounds the items read (DynamoDB applies it before the filter), so a page never
    holds more than `limit` clusters however many are registered.
    """
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Limit": limit,
        "FilterExpression": AUDITED_FILTER,
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": AUDITED_VALUES,
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    with aws_call("dynamodb:Scan", AUTOMATION_ACCOUNT):
        page = dynamodb.scan(**kwargs)
    return [_from_ddb(i) for i in page["Items"]], page.get("LastEvaluatedKey")


def registered(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every cluster whose access is meant to exist (state READY), whose deregistration did not
    finish (REVOKING), and every cluster a failed compensation left changes for (`leftBehind`)."""
    items: list[dict[str, Any]] = []
    with aws_call("dynamodb:Scan", AUTOMATION_ACCOUNT):
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression=AUDITED_FILTER,
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=AUDITED_VALUES,
        ):
            items.extend(_from_ddb(i) for i in page["Items"])
    return sorted(items, key=lambda i: i["clusterId"])


#: What a failed compensation left in the accounts (a list of `CompensationIncomplete.left`).
LEFT_BEHIND = "leftBehind"
_REQUEST_FIELDS = (
    "clusterManagerAccountId",
    "s3AccountId",
    "nodeRoleName",
    "accessRoleName",
    "assumePolicyName",
    "accessPolicyName",
)


def record_left_behind(
    dynamodb: Any,
    table: str,
    request: Any,
    execution: str | None,
    error: str | None,
    left: list[dict[str, Any]],
) -> None:
    """Keep what a failed compensation left on the cluster's record, for the audit and a human.

    A cluster never registered gets a FAILED record holding only its names; a registered
    one keeps its state (its earlier access is still meant to exist).
    """
    given = request.to_dict()
    names = {"#l": LEFT_BEHIND, "#s": "state", "#e": "leftByExecution", "#r": "lastError", "#u": "updatedAt"}
    values: dict[str, Any] = {
        ":l": ddb_types.serialize(left),
        ":failed": {"S": FAILED},
        ":e": {"S": execution or ""},
        ":r": {"S": (error or "")[:1000]},
        ":u": {"S": now()},
    }
    sets = ["#l = :l", "#s = if_not_exists(#s, :failed)", "#e = :e", "#r = :r", "#u = :u"]
    names["#x"] = EXPIRES_AT  # what was left must outlive a revoked record's retention
    for i, field in enumerate(_REQUEST_FIELDS):
        if given.get(field):
            names[f"#q{i}"] = field
            values[f":q{i}"] = {"S": str(given[field])}
            sets.append(f"#q{i} = if_not_exists(#q{i}, :q{i})")
    retried(
        "dynamodb:UpdateItem",
        AUTOMATION_ACCOUNT,
        lambda: dynamodb.update_item(
            TableName=table,
            Key={"clusterId": {"S": given["clusterId"]}},
            UpdateExpression="SET " + ", ".join(sets) + " REMOVE #x",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        ),
    )


def clear_left_behind(dynamodb: Any, table: str, cluster_id: str, execution: str | None) -> None:
    """Forget what an earlier attempt of this execution's compensation recorded as left behind
    (a later attempt undid it): the record `record_left_behind` created for a cluster never
    registered goes; a registered cluster's keeps its registration. Another execution's stays.
    """
    key = {"clusterId": {"S": cluster_id}}
    names = {"#l": LEFT_BEHIND, "#e": "leftByExecution", "#c": "createdAt"}
    mine = {":e": {"S": execution or ""}}
    try:
        with aws_call("dynamodb:DeleteItem", AUTOMATION_ACCOUNT):
            dynamodb.delete_item(
                TableName=table,
                Key=key,
                ConditionExpression="#e = :e AND attribute_not_exists(#c)",
                ExpressionAttributeNames={"#e": names["#e"], "#c": names["#c"]},
                ExpressionAttributeValues=mine,
            )
        return
    except AwsOperationFailed as exc:
        if exc.code != "ConditionalCheckFailedException":
            raise
    try:
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="REMOVE #l, #e",
            ConditionExpression="#e = :e",
            ExpressionAttributeNames={"#l": names["#l"], "#e": names["#e"]},
            ExpressionAttributeValues=mine,
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise translate(exc, "dynamodb:UpdateItem", AUTOMATION_ACCOUNT) from exc
