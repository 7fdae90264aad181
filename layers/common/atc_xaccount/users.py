"""Who still needs a shared grant, read consistently from the registry's base table.

"Does another cluster still need this access role ARN, this node role's attachment, this
external ID?" decides what an offboarding may withdraw. The registry's GSI
(`byClusterManagerAccount`) is eventually consistent: right after another cluster's Record
it may not list that cluster yet, and an offboarding would withdraw what it needs. So each
Record also keeps the cluster in one item per cluster manager account (`users#<account>`,
a map cluster ID -> what it uses), in the same transaction, and Forget removes it; the item
is read with `ConsistentRead`. Clusters recorded before this item existed are still found
through the GSI: callers take the union of both, so nothing needed is ever missed.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount.aws_errors import aws_call

AUTOMATION_ACCOUNT = "automation"
#: What each user entry keeps: the ARNs a cluster's access is made of, and its ID's fingerprint.
FIELDS = ("nodeRoleArn", "accessRoleArn", "assumePolicyArn", "externalIdFingerprint")


def users_key(cluster_manager_account: str) -> str:
    """The item's key: '#' never occurs in a cluster ID, and the item has no state (no scan lists it)."""
    return f"users#{cluster_manager_account}"


def user_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What one registered cluster uses (from its registry record)."""
    return {field: record[field] for field in FIELDS if record.get(field)}


def _attribute(cluster_id: str) -> str:
    return f"u#{cluster_id}"


def add_item(table: str, cluster_manager_account: str, cluster_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A transaction item that keeps `cluster_id` as a user (in the Record's transaction).

    One attribute per user (not a map inside one), so a first user creates the item and a
    transaction never touches two parts of it at once.
    """
    return {
        "Update": {
            "TableName": table,
            "Key": {"clusterId": {"S": users_key(cluster_manager_account)}},
            "UpdateExpression": "SET #c = :v",
            "ExpressionAttributeNames": {"#c": _attribute(cluster_id)},
            "ExpressionAttributeValues": {":v": {"M": {k: {"S": str(v)} for k, v in sorted(entry.items())}}},
        }
    }


def add_items(
    table: str, cluster_manager_account: str, entries: dict[str, dict[str, Any]], *, keep_existing: bool = False
) -> dict[str, Any]:
    """One transaction item keeping several clusters as users (a group commit serves many).

    `keep_existing`: an entry already kept (e.g. with its fingerprint) is left as it is.
    A commit keeps the clusters it served before their Record: an offboarding or a
    compensation meanwhile sees them as needing what the commit wrote for them.
    """
    names, values, sets = {}, {}, []
    for n, (cluster, entry) in enumerate(sorted(entries.items())):
        names[f"#c{n}"] = _attribute(cluster)
        values[f":v{n}"] = {"M": {k: {"S": str(v)} for k, v in sorted(entry.items())}}
        sets.append(f"#c{n} = if_not_exists(#c{n}, :v{n})" if keep_existing else f"#c{n} = :v{n}")
    return {
        "Update": {
            "TableName": table,
            "Key": {"clusterId": {"S": users_key(cluster_manager_account)}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def read(dynamodb: Any, table: str, cluster_manager_account: str) -> dict[str, dict[str, str]]:
    """Cluster ID -> what it uses, for every cluster of the account Record kept (consistent)."""
    with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
        item = dynamodb.get_item(
            TableName=table, Key={"clusterId": {"S": users_key(cluster_manager_account)}}, ConsistentRead=True
        ).get("Item")
    return {
        name[2:]: {k: v["S"] for k, v in value["M"].items()}
        for name, value in (item or {}).items()
        if name.startswith("u#") and "M" in value
    }


def remove(dynamodb: Any, table: str, cluster_manager_account: str, cluster_id: str) -> None:
    """Forget `cluster_id` as a user (its access is withdrawn); nothing kept is no error.

    An item left with no user reads as no item (`read` returns nothing for it).
    """
    with aws_call("dynamodb:UpdateItem", AUTOMATION_ACCOUNT):
        dynamodb.update_item(
            TableName=table,
            Key={"clusterId": {"S": users_key(cluster_manager_account)}},
            UpdateExpression="REMOVE #c",
            ExpressionAttributeNames={"#c": _attribute(cluster_id)},
        )


def settle(dynamodb: Any, table: str, cluster_manager_account: str, cluster_id: str) -> None:
    """After a failed onboarding: the cluster's entry as the registry says (READY: as it was
    recorded; otherwise none), whatever a group commit kept for it meanwhile."""
    from atc_xaccount import registry

    entry = registry.get(dynamodb, table, cluster_id)
    if entry and entry.get("state") == registry.READY:
        with aws_call("dynamodb:TransactWriteItems", AUTOMATION_ACCOUNT):
            dynamodb.transact_write_items(
                TransactItems=[add_item(table, cluster_manager_account, cluster_id, user_entry(entry))]
            )
        return
    remove(dynamodb, table, cluster_manager_account, cluster_id)


def others(dynamodb: Any, table: str, cluster_manager_account: str, excluding: str) -> list[dict[str, Any]]:
    """Every other cluster of the account whose access must survive (READY in the registry).

    The consistent users item, plus what the GSI lists (clusters recorded before the item
    was kept); an entry in both is taken from the item.
    """
    from atc_xaccount import registry

    kept = read(dynamodb, table, cluster_manager_account)
    found = {cluster: {"clusterId": cluster, "state": registry.READY, **entry} for cluster, entry in kept.items()}
    for entry in registry.clusters_of_cluster_manager(dynamodb, table, cluster_manager_account):
        if entry.get("state") == registry.READY:
            found.setdefault(entry["clusterId"], entry)
    return [entry for cluster, entry in sorted(found.items()) if cluster != excluding]
