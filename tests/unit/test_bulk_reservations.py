"""The pure parts of a bulk's reservations (docs/converge.md "Bulk: reserve, then onboard")."""

from __future__ import annotations

from atc_xaccount import queue
from atc_xaccount.bulk import child_name, mark_reservations, tag_of
from atc_xaccount.model import Defaults

NOW = 1_000_000


def intent(execution: str, reserved_by: str | None = None, expires: int = NOW + 1) -> dict:
    found = {"execution": execution, "queuedAt": 1}
    if reserved_by:
        found.update(reservedBy=reserved_by, expiresAt=expires)
    return found


def test_a_row_onboarding_name_carries_its_bulk_and_nothing_else_does():
    name = child_name("local-1f62f8aa3bf8", 17)
    assert name.startswith("bulk-") and name.endswith("-17") and len(name) <= 80
    assert tag_of(name) == tag_of(child_name("local-1f62f8aa3bf8", 3)) != tag_of(child_name("another", 17))
    assert tag_of("local-1f62f8aa3bf8") is None
    assert tag_of("bulk-report") is None
    assert tag_of(None) is None


def test_a_reservation_is_served_only_by_its_own_bulk_and_only_before_it_expires():
    mine, other = tag_of(child_name("b1", 1)), tag_of(child_name("b2", 1))
    pending = [
        ("running", intent("exec-1")),
        ("reserved", intent(child_name("b1", 2), mine)),
        ("theirs", intent(child_name("b2", 2), other)),
        ("expired", intent(child_name("b1", 3), mine, expires=NOW)),
    ]
    assert queue.servable(pending, mine, NOW) == ([pending[0], pending[1]], ["expired"])
    assert queue.servable(pending, None, NOW) == ([pending[0]], ["expired"])
    assert queue.servable(pending, other, NOW) == ([pending[0], pending[2]], ["expired"])


def test_dropped_reservations_leave_the_queue_with_the_served_intents():
    item = queue.served_item("locks", "trust#1#r", {"a": {"added": True}}, ["gone"])["Update"]
    assert item["UpdateExpression"] == "SET #r0 = :r0 REMOVE #i0, #d0"
    assert item["ExpressionAttributeNames"] == {"#i0": "i#a", "#r0": "r#a", "#d0": "i#gone"}
    alone = queue.served_item("locks", "trust#1#r", {}, ["gone"])["Update"]
    assert alone["UpdateExpression"] == "REMOVE #d0" and "ExpressionAttributeValues" not in alone


def test_only_the_first_row_of_each_access_role_reserves_on_the_assume_policy():
    def row(line: int, cluster: str, s3: str, node: str = "atc-node") -> dict:
        detail = {"clusterId": cluster, "clusterManagerAccountId": "111111111111", "s3AccountId": s3}
        return {"line": line, "clusterId": cluster, "detail": {**detail, "nodeRoleName": node}}

    items = [row(2, "a", "222222222222"), row(3, "b", "222222222222"), row(4, "c", "333333333333")]
    items.append(row(5, "d", "222222222222", node="other-node"))
    marked = mark_reservations(items, "the-bulk", Defaults())
    assert [m["reservePolicy"] for m in marked] == [True, False, True, True]
    assert [m["execution"] for m in marked] == [child_name("the-bulk", n) for n in (2, 3, 4, 5)]
    assert all("externalId" not in m["request"] and m["request"]["clusterId"] == m["clusterId"] for m in marked)
