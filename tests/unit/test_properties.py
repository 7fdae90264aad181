"""Property tests: merge/remove never disturb foreign statements and are idempotent."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atc_xaccount.assume_policy import (
    OWNED_SID,
    merge_assume_policy,
    owned_resources,
    remove_assume_policy_resource,
)
from atc_xaccount.documents import same_document, statements
from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.trust import (
    admits_nobody_statement,
    grant_external_ids,
    grant_sid,
    grant_statement,
    is_admits_nobody,
    merge_trust_grant,
    remove_trust_grant,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PRINCIPALS = [
    "arn:aws:iam::111111111111:role/atc-node",
    "arn:aws:iam::222222222222:role/atc-node",  # same account as the access role
    "arn:aws-cn:iam::111111111111:role/atc-node",
    "arn:aws:iam::444444444444:role/ops/atc_node.v2",
]
OTHER_ARNS = ["arn:aws:iam::333333333333:role/partner", "arn:aws:iam::555555555555:root", "333333333333", *PRINCIPALS]

ext_ids = st.text(alphabet="abcXYZ019+=,.@:/-", min_size=2, max_size=12)
sids = st.text(alphabet="ABCabc0123", min_size=1, max_size=8)


# Strategies are built once: rebuilding them per draw dominates the run time.
_arn = st.sampled_from(OTHER_ARNS)
PRINCIPAL_BLOCKS = st.one_of(
    st.just({"Service": "ec2.amazonaws.com"}),
    st.builds(lambda a: {"AWS": a}, _arn),
    st.builds(lambda a: {"AWS": a}, st.lists(_arn, min_size=1, max_size=3)),
    st.just("*"),
)
_ids = st.one_of(ext_ids, st.lists(ext_ids, min_size=1, max_size=3))
CONDITIONS = st.one_of(
    st.none(),
    st.builds(lambda v: {"StringEquals": {"sts:ExternalId": v}}, _ids),
    st.builds(lambda v: {"StringLike": {"sts:ExternalId": v + "*"}}, ext_ids),
    st.builds(lambda b: {"Null": {"sts:ExternalId": b}}, st.sampled_from(["true", "false"])),
    st.builds(lambda b: {"Bool": {"aws:MultiFactorAuthPresent": b}}, st.booleans()),
)
ACTIONS = st.sampled_from(["sts:AssumeRole", ["sts:AssumeRole", "sts:TagSession"], "sts:*", "s3:GetObject"])


@st.composite
def foreign_statement(draw: st.DrawFn) -> dict[str, Any]:
    stmt: dict[str, Any] = {}
    sid = draw(st.one_of(st.none(), sids))
    if sid is not None:
        stmt["Sid"] = sid
    stmt["Effect"] = draw(st.sampled_from(["Allow", "Allow", "Deny"]))
    stmt["Principal"] = draw(PRINCIPAL_BLOCKS)
    stmt["Action"] = draw(ACTIONS)
    condition = draw(CONDITIONS)
    if condition is not None:
        stmt["Condition"] = condition
    return stmt


FOREIGN_LISTS = st.lists(foreign_statement(), max_size=5)


@st.composite
def trust_case(draw: st.DrawFn) -> tuple[dict[str, Any], str, str, str]:
    """(document, principal, external id, an unrelated external id)."""
    principal = draw(st.sampled_from(PRINCIPALS))
    stmts = draw(FOREIGN_LISTS)
    existing = draw(st.lists(ext_ids, max_size=3, unique=True))
    if existing:
        stmts.insert(draw(st.integers(0, len(stmts))), grant_statement(principal, existing))
    others = [p for p in PRINCIPALS if p != principal]
    if draw(st.booleans()):
        stmts.append(grant_statement(draw(st.sampled_from(others)), draw(st.lists(ext_ids, min_size=1, max_size=2))))
    ext = draw(st.one_of(ext_ids, st.sampled_from(existing) if existing else ext_ids))
    unrelated = "Unrelated" + draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    doc: dict[str, Any] = {"Version": "2012-10-17", "Statement": stmts}
    if len(stmts) == 1 and draw(st.booleans()):
        doc["Statement"] = stmts[0]  # AWS allows a single statement object
    return doc, principal, ext, unrelated


def _others(doc: dict[str, Any], principal: str) -> list[dict[str, Any]]:
    sid = grant_sid(principal)
    return [s for s in statements(doc) if s.get("Sid") != sid and not is_admits_nobody(s)]


def _as_list_form(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "Statement": statements(doc)}


@SETTINGS
@given(trust_case())
def test_merge_preserves_foreign_statements_exactly(case: tuple[Any, str, str, str]) -> None:
    doc, principal, ext, _ = case
    original = copy.deepcopy(doc)
    merged, _ = merge_trust_grant(doc, principal, ext)
    assert doc == original
    assert _others(merged, principal) == _others(original, principal)
    assert ext in grant_external_ids(merged, principal)


@SETTINGS
@given(trust_case())
def test_merge_is_idempotent(case: tuple[Any, str, str, str]) -> None:
    doc, principal, ext, _ = case
    already = ext in grant_external_ids(doc, principal)
    once, changed = merge_trust_grant(doc, principal, ext)
    assert changed is not already
    if already:
        assert once == doc
    twice, changed_again = merge_trust_grant(once, principal, ext)
    assert (twice, changed_again) == (once, False)


@SETTINGS
@given(trust_case())
def test_remove_after_add_restores(case: tuple[Any, str, str, str]) -> None:
    doc, principal, ext, _ = case
    had_grant = bool(grant_external_ids(doc, principal))
    already = ext in grant_external_ids(doc, principal)
    merged, _ = merge_trust_grant(doc, principal, ext)
    removed, changed = remove_trust_grant(merged, principal, ext)
    assert changed is True
    assert _others(removed, principal) == _others(doc, principal)
    if not already and statements(doc):
        assert same_document(removed, doc)
    if not had_grant and statements(doc):
        assert removed == _as_list_form(doc)
    if not statements(doc):
        # IAM refuses `Statement: []`: the grant we added gives way to the admits-nobody statement.
        assert statements(removed) == [admits_nobody_statement()]


@SETTINGS
@given(trust_case())
def test_after_merge_evaluator_admits_only_that_id(case: tuple[Any, str, str, str]) -> None:
    doc, principal, ext, unrelated = case
    merged, _ = merge_trust_grant(doc, principal, ext)
    foreign_only = {"Statement": _others(doc, principal)}
    denied_by_foreign = bool(evaluate_trust(foreign_only, principal, ext).matched_deny)
    assert evaluate_trust(merged, principal, ext).allowed is not denied_by_foreign
    # Another ID is admitted after the merge only if it was admitted before it.
    assert evaluate_trust(merged, principal, unrelated).allowed == evaluate_trust(doc, principal, unrelated).allowed
    assert evaluate_trust(merged, principal, None).allowed == evaluate_trust(doc, principal, None).allowed


ROLES = [
    "arn:aws:iam::222222222222:role/atc-s3-access-keys",
    "arn:aws:iam::444444444444:role/atc-s3-access-keys",
    "arn:aws-cn:iam::222222222222:role/x",
]
identity_statement = st.builds(
    lambda sid, effect, action, resource: {
        k: v for k, v in {"Sid": sid, "Effect": effect, "Action": action, "Resource": resource}.items() if v is not None
    },
    st.one_of(st.none(), sids),
    st.sampled_from(["Allow", "Deny"]),
    st.sampled_from(["sts:AssumeRole", "s3:*", ["s3:GetObject", "s3:PutObject"]]),
    st.one_of(st.just("*"), st.sampled_from(ROLES), st.lists(st.sampled_from(ROLES), max_size=2)),
)


@SETTINGS
@given(st.lists(identity_statement, max_size=5), st.lists(st.sampled_from(ROLES), unique=True), st.sampled_from(ROLES))
def test_assume_policy_merge_remove(foreign: list[dict[str, Any]], owned: list[str], role: str) -> None:
    stmts = list(foreign)
    if owned:
        stmts.append({"Sid": OWNED_SID, "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": sorted(owned)})
    doc = {"Version": "2012-10-17", "Statement": stmts}
    original = copy.deepcopy(doc)
    merged, changed = merge_assume_policy(doc, role)
    assert doc == original
    assert changed is (role not in owned)
    assert [s for s in statements(merged) if s.get("Sid") != OWNED_SID] == foreign
    assert role in owned_resources(merged)
    assert merge_assume_policy(merged, role) == (merged, False)
    removed, removed_changed = remove_assume_policy_resource(merged, role)
    assert removed_changed is True
    assert [s for s in statements(removed) if s.get("Sid") != OWNED_SID] == foreign
    if role not in owned:
        assert removed == doc
