"""Provenance of an assume policy (issue 9 item 4): what it was before atc-xaccount changed it.

One registry item per (cluster manager account, assume policy), next to the clusters that
share the policy, so the last deregistration puts back exactly that. Written with
`if_not_exists` in the Record transaction (only a committed onboarding records; the first
one wins), forgotten when the last user deregisters. Its key cannot be a cluster ID ('#' is
not allowed in one), and it has no state, so no scan or query of clusters returns it.
"""

from __future__ import annotations

from typing import Any

from atc_xaccount.aws_errors import aws_call
from atc_xaccount.registry import AUTOMATION_ACCOUNT

#: The policy did not exist: atc-xaccount created it (and may delete it again).
CREATED_BY_US = "createdByUs"


def provenance_key(cluster_manager_account: str, assume_policy_name: str) -> str:
    return f"policy#{cluster_manager_account}#{assume_policy_name.lower()}"


def attached_before(node_role_name: str) -> str:
    """Was the policy attached to that node role before atc-xaccount attached it?"""
    return f"attachedBefore#{node_role_name.lower()}"


def resource_before(access_role_arn: str) -> str:
    """Did the policy already allow that access role before atc-xaccount added it?"""
    return f"resourceBefore#{access_role_arn}"


def provenance_of(
    policy_change: dict[str, Any] | None,
    attach_change: dict[str, Any] | None,
    node_role_name: str,
    access_role_arn: str,
) -> dict[str, bool]:
    """What an onboarding's change records say the policy was before it (empty: unknown)."""
    if not policy_change or not attach_change:
        return {}
    return {
        CREATED_BY_US: policy_change.get("action") == "created",
        attached_before(node_role_name): bool(attach_change.get("before")),
        resource_before(access_role_arn): policy_change.get("action") == "unchanged",
    }


def provenance_item(table: str, key: str, facts: dict[str, bool]) -> dict[str, Any]:
    """A transaction item keeping each fact unless an earlier onboarding kept it already."""
    names = {f"#p{i}": attr for i, attr in enumerate(sorted(facts))}
    values = {f":p{i}": {"BOOL": facts[attr]} for i, attr in enumerate(sorted(facts))}
    return {
        "Update": {
            "TableName": table,
            "Key": {"clusterId": {"S": key}},
            "UpdateExpression": "SET " + ", ".join(f"{n} = if_not_exists({n}, :{n[1:]})" for n in names),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def read_provenance(dynamodb: Any, table: str, key: str) -> dict[str, bool]:
    """The facts kept for a policy (empty for one touched before they were kept)."""
    with aws_call("dynamodb:GetItem", AUTOMATION_ACCOUNT):
        item = dynamodb.get_item(TableName=table, Key={"clusterId": {"S": key}}, ConsistentRead=True).get("Item")
    return {name: bool(value["BOOL"]) for name, value in (item or {}).items() if "BOOL" in value}


def forget_provenance(dynamodb: Any, table: str, key: str, attrs: list[str], *, everything: bool = False) -> None:
    """Drop facts that no longer hold (their last user is gone); the caller holds the policy's lock."""
    if everything:
        with aws_call("dynamodb:DeleteItem", AUTOMATION_ACCOUNT):
            dynamodb.delete_item(TableName=table, Key={"clusterId": {"S": key}})
        return
    if not attrs:
        return
    names = {f"#p{i}": attr for i, attr in enumerate(attrs)}
    with aws_call("dynamodb:UpdateItem", AUTOMATION_ACCOUNT):
        dynamodb.update_item(
            TableName=table,
            Key={"clusterId": {"S": key}},
            UpdateExpression="REMOVE " + ", ".join(names),
            ExpressionAttributeNames=names,
        )
