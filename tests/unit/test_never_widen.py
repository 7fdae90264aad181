"""Never widen, as a checked invariant: property tests over hostile foreign statements.

The generators produce what people really leave in trust and assume policies: other
partners' grants, Deny statements (also ones that block an external ID), `NotPrincipal`,
conditions of every operator, and statements that *reuse our Sid* in a foreign shape.
For merge, remove and the admits-nobody compaction the properties are:

- a statement carrying our Sid in any other shape is refused (`StatementShapeError`),
  never rewritten;
- otherwise every foreign statement comes back byte-identical, and the evaluator-backed
  guard finds nothing admitted beyond the one grant added (nothing at all for a removal)
  and no Deny weakened;
- and the guard itself is not a test that cannot fail: every widening mutation of a
  merged document is reported.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atc_xaccount.assume_policy import (
    OWNED_SID,
    merge_assume_policy,
    remove_assume_policy_resource,
    statement_problems,
)
from atc_xaccount.documents import StatementShapeError, statements
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust
from atc_xaccount.trust import (
    admits_nobody_statement,
    grant_shape_problems,
    grant_sid,
    grant_statement,
    is_admits_nobody,
    merge_trust_grant,
    remove_trust_grant,
)
from atc_xaccount.widening import identity_violations, trust_violations

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NODE = "arn:aws:iam::111111111111:role/atc-node"
PARTNER = "arn:aws:iam::333333333333:role/partner"
ACCESS_ROLE = "arn:aws:iam::222222222222:role/atc-s3-access-keys"
OTHER_ROLE = "arn:aws:iam::444444444444:role/other-access"
NODE_SID = grant_sid(NODE)

ext_ids = st.text(alphabet="abcXYZ019+=,.@:/-", min_size=2, max_size=10)
_ids = st.one_of(ext_ids, st.lists(ext_ids, min_size=1, max_size=3))
PRINCIPALS = st.one_of(
    st.just({"Service": "ec2.amazonaws.com"}),
    st.sampled_from([{"AWS": NODE}, {"AWS": PARTNER}, {"AWS": "111111111111"}, {"AWS": [NODE, PARTNER]}]),
    st.just({"AWS": "arn:aws:iam::111111111111:root"}),
    st.just("*"),
)
CONDITIONS = st.one_of(
    st.none(),
    st.builds(lambda v: {"StringEquals": {"sts:ExternalId": v}}, _ids),
    st.builds(lambda v: {"StringNotEquals": {"sts:ExternalId": v}}, _ids),
    st.builds(lambda v: {"StringLike": {"sts:ExternalId": v + "*"}}, ext_ids),
    st.just({"StringLike": {"sts:ExternalId": "*"}}),
    st.builds(lambda b: {"Null": {"sts:ExternalId": b}}, st.sampled_from(["true", "false"])),
    st.builds(lambda v: {"StringEqualsIgnoreCase": {"sts:ExternalId": v}}, ext_ids),
    st.builds(lambda v: {"StringEquals": {"sts:ExternalId": v}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, ext_ids),
    st.builds(lambda b: {"Bool": {"aws:MultiFactorAuthPresent": b}}, st.booleans()),
)
TRUST_ACTIONS = st.sampled_from(["sts:AssumeRole", ["sts:AssumeRole", "sts:TagSession"], "sts:*", "*"])


@st.composite
def trust_statement(draw: st.DrawFn, *, our_sid: bool = False) -> dict[str, Any]:
    stmt: dict[str, Any] = {}
    if our_sid:
        stmt["Sid"] = NODE_SID
    elif draw(st.booleans()):
        stmt["Sid"] = draw(st.text(alphabet="ABCabc0123", min_size=1, max_size=6))
    stmt["Effect"] = draw(st.sampled_from(["Allow", "Allow", "Deny"]))
    key = draw(st.sampled_from(["Principal", "Principal", "Principal", "NotPrincipal"]))
    stmt[key] = draw(PRINCIPALS)
    stmt["Action"] = draw(TRUST_ACTIONS)
    condition = draw(CONDITIONS)
    if condition is not None:
        stmt["Condition"] = condition
    return stmt


@st.composite
def trust_document(draw: st.DrawFn) -> dict[str, Any]:
    stmts = draw(st.lists(trust_statement(), max_size=4))
    choice = draw(st.sampled_from(["none", "ours", "ours", "hijacked"]))
    if choice == "ours":
        stmts.insert(draw(st.integers(0, len(stmts))), grant_statement(NODE, draw(st.lists(ext_ids, min_size=1))))
    elif choice == "hijacked":
        stmts.insert(draw(st.integers(0, len(stmts))), draw(trust_statement(our_sid=True)))
    if draw(st.booleans()):
        stmts.append(grant_statement(PARTNER, draw(st.lists(ext_ids, min_size=1, max_size=2))))
    return {"Version": "2012-10-17", "Statement": stmts or [admits_nobody_statement()]}


def _ours(stmt: dict[str, Any]) -> bool:
    return is_admits_nobody(stmt) or (stmt.get("Sid") == NODE_SID and not grant_shape_problems(stmt, NODE))


def _hijacked(doc: dict[str, Any]) -> bool:
    mine = [s for s in statements(doc) if s.get("Sid") == NODE_SID]
    return len(mine) > 1 or any(grant_shape_problems(s, NODE) for s in mine)


def _foreign(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in statements(doc) if not _ours(s)]


@SETTINGS
@given(trust_document(), ext_ids)
def test_trust_merge_never_widens(doc: dict[str, Any], external_id: str) -> None:
    original = copy.deepcopy(doc)
    if _hijacked(doc):
        with pytest.raises(StatementShapeError):
            merge_trust_grant(doc, NODE, external_id)
        assert doc == original
        return
    merged, _ = merge_trust_grant(doc, NODE, external_id)
    assert doc == original
    assert _foreign(merged) == _foreign(original)
    assert trust_violations(original, merged, may_admit={(NODE, external_id)}, ours=_ours) == []


@SETTINGS
@given(trust_document(), ext_ids)
def test_trust_remove_never_widens(doc: dict[str, Any], external_id: str) -> None:
    if _hijacked(doc):
        with pytest.raises(StatementShapeError):
            remove_trust_grant(doc, NODE, external_id)
        return
    with_it, _ = merge_trust_grant(doc, NODE, external_id)
    removed, changed = remove_trust_grant(with_it, NODE, external_id)
    assert changed
    assert _foreign(removed) == _foreign(doc)
    assert trust_violations(with_it, removed, may_admit=set(), ours=_ours) == []
    assert statements(removed), "IAM refuses Statement: [] - the compaction leaves admits-nobody"


@SETTINGS
@given(st.lists(ext_ids, min_size=1, max_size=3, unique=True))
def test_compaction_to_admits_nobody_and_back(ids: list[str]) -> None:
    only_ours = {"Version": "2012-10-17", "Statement": [grant_statement(NODE, ids)]}
    doc = only_ours
    for external_id in ids:
        after, _ = remove_trust_grant(doc, NODE, external_id)
        assert trust_violations(doc, after, may_admit=set(), ours=_ours) == []
        doc = after
    assert statements(doc) == [admits_nobody_statement()]
    again, changed = merge_trust_grant(doc, NODE, ids[0])
    assert changed and statements(again) == [grant_statement(NODE, [ids[0]])]
    assert trust_violations(doc, again, may_admit={(NODE, ids[0])}, ours=_ours) == []


OUTSIDER = "arn:aws:iam::999999999999:role/someone"
# Each widening of our grant, with a pair it newly admits unless the document already did.
WIDENINGS: dict[str, tuple[Any, tuple[str, str | None]]] = {
    "principal-star": (lambda s: {**s, "Principal": {"AWS": "*"}}, (OUTSIDER, "ID")),
    "condition-dropped": (lambda s: {k: v for k, v in s.items() if k != "Condition"}, (NODE, None)),
    "another-id": (
        lambda s: {**s, "Condition": {"StringEquals": {"sts:ExternalId": ["other-id-1", "ID"]}}},
        (NODE, "other-id-1"),
    ),
    "partner-admitted": (lambda s: {**s, "Principal": {"AWS": [NODE, PARTNER]}}, (PARTNER, "ID")),
}


@SETTINGS
@given(trust_document(), ext_ids, st.sampled_from(sorted(WIDENINGS)))
def test_the_trust_guard_reports_every_widening(doc: dict[str, Any], external_id: str, how: str) -> None:
    if _hijacked(doc):
        return
    merged, _ = merge_trust_grant(doc, NODE, external_id)
    widen, (principal, probe_id) = WIDENINGS[how]
    probe_id = external_id if probe_id == "ID" else probe_id
    widened = copy.deepcopy(merged)
    widened["Statement"] = [widen(s) if s.get("Sid") == NODE_SID else s for s in statements(widened)]
    widened = json.loads(json.dumps(widened).replace('"ID"', json.dumps(external_id)))
    violations = trust_violations(doc, widened, may_admit={(NODE, external_id)}, ours=_ours)
    # The oracle is the evaluator on the pair the widening is about: admitted now, not before.
    newly = (
        evaluate_trust(widened, principal, probe_id).allowed and not evaluate_trust(doc, principal, probe_id).allowed
    )
    if newly and (principal, probe_id) != (NODE, external_id):
        assert violations


@SETTINGS
@given(trust_document(), ext_ids)
def test_the_trust_guard_reports_a_dropped_or_changed_deny(doc: dict[str, Any], external_id: str) -> None:
    denies = [i for i, s in enumerate(statements(doc)) if s.get("Effect") == "Deny" and not _ours(s)]
    if _hijacked(doc) or not denies:
        return
    merged, _ = merge_trust_grant(doc, NODE, external_id)
    target = statements(doc)[denies[0]]
    without = {**merged, "Statement": [s for s in statements(merged) if s != target]}
    assert any("Deny" in v for v in trust_violations(doc, without, may_admit={(NODE, external_id)}, ours=_ours))
    allowed = {**merged, "Statement": [{**s, "Effect": "Allow"} if s == target else s for s in statements(merged)]}
    assert trust_violations(doc, allowed, may_admit={(NODE, external_id)}, ours=_ours)


IDENTITY_ACTIONS = st.sampled_from(["sts:AssumeRole", "sts:*", ["sts:AssumeRole", "sts:TagSession"], "s3:GetObject"])
RESOURCES = st.sampled_from(["*", ACCESS_ROLE, OTHER_ROLE, [ACCESS_ROLE, OTHER_ROLE], "arn:aws:iam::*:role/atc-*"])


@st.composite
def identity_statement(draw: st.DrawFn, *, our_sid: bool = False) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Sid": OWNED_SID} if our_sid else {}
    stmt["Effect"] = draw(st.sampled_from(["Allow", "Deny"]))
    stmt[draw(st.sampled_from(["Action", "Action", "NotAction"]))] = draw(IDENTITY_ACTIONS)
    stmt[draw(st.sampled_from(["Resource", "Resource", "NotResource"]))] = draw(RESOURCES)
    if draw(st.booleans()):
        stmt["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    return stmt


@st.composite
def identity_document(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    stmts = draw(st.lists(identity_statement(), max_size=4))
    choice = draw(st.sampled_from(["none", "ours", "hijacked"]))
    if choice == "ours":
        stmts.append({"Sid": OWNED_SID, "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [OTHER_ROLE]})
    elif choice == "hijacked":
        stmts.append(draw(identity_statement(our_sid=True)))
    return {"Version": "2012-10-17", "Statement": stmts}


def _ours_identity(stmt: dict[str, Any]) -> bool:
    return stmt.get("Sid") == OWNED_SID and not statement_problems(stmt)


@SETTINGS
@given(identity_document())
def test_assume_policy_merge_and_remove_never_widen(doc: dict[str, Any] | None) -> None:
    hijacked = any(s.get("Sid") == OWNED_SID and statement_problems(s) for s in statements(doc))
    if hijacked:
        with pytest.raises(StatementShapeError):
            merge_assume_policy(doc, ACCESS_ROLE)
        return
    merged, _ = merge_assume_policy(doc, ACCESS_ROLE)
    assert [s for s in statements(merged) if not _ours_identity(s)] == [
        s for s in statements(doc) if not _ours_identity(s)
    ]
    assert identity_violations(doc, merged, may_allow={ACCESS_ROLE}, ours=_ours_identity) == []
    removed, _ = remove_assume_policy_resource(merged, ACCESS_ROLE)
    if statements(removed):
        assert identity_violations(merged, removed, may_allow=set(), ours=_ours_identity) == []
    widened = {
        **merged,
        "Statement": [{**s, "Resource": "*"} if s.get("Sid") == OWNED_SID else s for s in statements(merged)],
    }
    outsider = "arn:aws:iam::999999999999:role/anything"
    docs = [doc] if doc else []
    newly = evaluate_identity([widened], "sts:AssumeRole", outsider).allowed and not (
        evaluate_identity(docs, "sts:AssumeRole", outsider).allowed
    )
    if newly:
        assert identity_violations(doc, widened, may_allow={ACCESS_ROLE}, ours=_ours_identity)


def test_a_deny_reusing_our_sid_in_the_assume_policy_is_refused_not_turned_into_an_allow() -> None:
    denied = {"Sid": OWNED_SID, "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": OTHER_ROLE}
    with pytest.raises(StatementShapeError) as raised:
        merge_assume_policy({"Version": "2012-10-17", "Statement": [denied]}, ACCESS_ROLE)
    assert raised.value.differences == ['Effect is "Deny", not "Allow"']


@pytest.mark.parametrize(
    ("statement", "difference"),
    [
        pytest.param({**grant_statement(NODE, ["leaked-id"]), "Effect": "Deny"}, 'Effect is "Deny"', id="deny"),
        pytest.param(grant_statement(PARTNER, ["partner-id"]) | {"Sid": NODE_SID}, "Principal is", id="partner"),
        pytest.param(
            {
                **grant_statement(NODE, ["an-id"]),
                "Condition": {"StringEquals": {"sts:ExternalId": "an-id"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            },
            "Condition is {StringEquals sts:ExternalId; IpAddress aws:SourceIp}",
            id="extra-condition",
        ),
        pytest.param(
            {**grant_statement(NODE, ["an-id"]), "Principal": {"AWS": "AROAEXAMPLEID1234567"}},
            "unique ID AROAEXAMPLEID1234567",
            id="recreated-node-role",
        ),
        pytest.param({**grant_statement(NODE, ["an-id"]), "Action": "sts:*"}, 'Action is "sts:*"', id="action"),
    ],
)
def test_a_statement_with_our_sid_in_another_shape_is_foreign(statement: dict[str, Any], difference: str) -> None:
    doc = {"Version": "2012-10-17", "Statement": [statement]}
    for change in (merge_trust_grant, remove_trust_grant):
        with pytest.raises(StatementShapeError) as raised:
            change(doc, NODE, "an-id")
        assert raised.value.sid == NODE_SID
        assert any(difference in d for d in raised.value.differences), raised.value.differences
        # The external ID values never appear in the description (they are secrets).
        assert not any("leaked-id" in d or "partner-id" in d for d in raised.value.differences)


def test_the_guards_name_what_a_widened_document_would_grant() -> None:
    before = {"Version": "2012-10-17", "Statement": [grant_statement(PARTNER, ["partner-id"])]}
    widened = {
        "Version": "2012-10-17",
        "Statement": [grant_statement(PARTNER, ["partner-id"]), {**grant_statement(NODE, ["mine"]), "Principal": "*"}],
    }
    assert trust_violations(before, widened, may_admit={(NODE, "mine")}, ours=_ours) == [
        "newly admit arn:aws:iam::000000000000:role/atc-xaccount-probe with the external ID being granted",
        "newly admit arn:aws:iam::111111111111:role/atc-xaccount-probe with the external ID being granted",
    ]
    dropped = {"Version": "2012-10-17", "Statement": [grant_statement(NODE, ["mine"])]}
    assert trust_violations(before, dropped, may_admit={(NODE, "mine")}, ours=_ours) == [
        "change or remove the statement " + grant_sid(PARTNER) + ", which this project does not own"
    ]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sts:*", "Resource": OTHER_ROLE}]}
    merged, _ = merge_assume_policy(policy, ACCESS_ROLE)
    assert identity_violations(policy, merged, may_allow={ACCESS_ROLE}, ours=_ours_identity) == []
    no_deny = {**merged, "Statement": statements(merged)[1:]}
    assert identity_violations(policy, no_deny, may_allow={ACCESS_ROLE}, ours=_ours_identity)[0] == (
        "remove or change the Deny statement #0"
    )
