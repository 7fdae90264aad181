"""Document helpers: the canonical form decides whether a write is needed at all."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from policy_samples import NODE, ec2_statement, partner_statement, sample_trust

from atc_xaccount.documents import (
    as_list,
    canonical,
    empty_policy,
    non_whitespace_size,
    replace_sid_statements,
    same_document,
    statements,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ("a", ["a"]), (["a", "b"], ["a", "b"]), (("a",), ["a"]), ({"k": 1}, [{"k": 1}])],
)
def test_as_list(value: object, expected: list[Any]) -> None:
    assert as_list(value) == expected


def test_statements_accepts_single_dict_and_missing() -> None:
    assert statements({"Statement": ec2_statement()}) == [ec2_statement()]
    assert statements({"Version": "2012-10-17"}) == []
    assert statements(None) == []


def test_empty_policy_is_fresh_each_time() -> None:
    first = empty_policy()
    first["Statement"].append({})
    assert empty_policy() == {"Version": "2012-10-17", "Statement": []}


def _variant(**changes: Any) -> dict[str, Any]:
    stmt = {**partner_statement(), **changes}
    return {"Version": "2012-10-17", "Statement": [stmt, ec2_statement()]}


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(_variant(), id="reordered-statements"),
        pytest.param(_variant(Action=["sts:AssumeRole"]), id="action-list"),
        pytest.param(_variant(Action="STS:assumerole"), id="action-case"),
        pytest.param(_variant(Action=["sts:AssumeRole", "sts:AssumeRole"]), id="action-dup"),
        pytest.param(_variant(Principal={"AWS": ["arn:aws:iam::333333333333:role/partner"]}), id="principal-list"),
        pytest.param(
            _variant(Condition={"stringEquals": {"STS:ExternalID": ["partner-ext-id-1234"]}}),
            id="condition-case-and-list",
        ),
        pytest.param({"Version": "2012-10-17", "Statement": [ec2_statement(), partner_statement()]}, id="identical"),
    ],
)
def test_same_document_semantic_equality(other: dict[str, Any]) -> None:
    assert same_document(sample_trust(), other)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(_variant(Effect="Deny"), id="effect"),
        pytest.param(_variant(Principal={"AWS": NODE}), id="principal"),
        pytest.param(
            _variant(Condition={"StringEquals": {"sts:ExternalId": "other"}}), id="external-id-value-is-case-sensitive"
        ),
        pytest.param(_variant(Condition={"StringLike": {"sts:ExternalId": "partner-ext-id-1234"}}), id="operator"),
        pytest.param({"Version": "2012-10-17", "Statement": [ec2_statement()]}, id="missing"),
        pytest.param(_variant(Sid="Other"), id="sid"),
    ],
)
def test_same_document_detects_differences(other: dict[str, Any]) -> None:
    assert not same_document(sample_trust(), other)


def test_canonical_principal_star_equals_aws_star_and_bool_values() -> None:
    a = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": True}},
            }
        ]
    }
    b = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            }
        ]
    }
    assert same_document(a, b)


def test_canonical_keeps_differently_cased_duplicate_keys_apart() -> None:
    # Two spellings of one key are ANDed by IAM; merging them into one OR-set would be wrong.
    a = {
        "Statement": [{"Condition": {"StringEquals": {"sts:ExternalId": "x"}, "stringequals": {"sts:externalid": "y"}}}]
    }
    b = {"Statement": [{"Condition": {"StringEquals": {"sts:ExternalId": ["x", "y"]}}}]}
    assert not same_document(a, b)


def test_canonical_does_not_mutate() -> None:
    d = sample_trust()
    before = copy.deepcopy(d)
    canonical(d)["Statement"].clear()
    assert d == before
    assert same_document(None, None) and not same_document(None, d)


def test_non_whitespace_size_matches_iam_counting() -> None:
    d = {"Version": "2012-10-17", "Statement": []}
    # {"Version":"2012-10-17","Statement":[]} without spaces
    assert non_whitespace_size(d) == len('{"Version":"2012-10-17","Statement":[]}')
    # Whitespace inside values is not counted either.
    assert non_whitespace_size({"a": "b c"}) == len('{"a":"bc"}')


def test_replace_sid_statements() -> None:
    d = {"Statement": [{"Sid": "A"}, {"Sid": "B"}, {"Sid": "A", "x": 1}]}
    assert replace_sid_statements(d, "A", {"Sid": "A", "y": 2}) == {"Statement": [{"Sid": "A", "y": 2}, {"Sid": "B"}]}
    assert replace_sid_statements(d, "A", None) == {"Statement": [{"Sid": "B"}]}
    assert replace_sid_statements(d, "C", {"Sid": "C"})["Statement"][-1] == {"Sid": "C"}
    assert d == {"Statement": [{"Sid": "A"}, {"Sid": "B"}, {"Sid": "A", "x": 1}]}
