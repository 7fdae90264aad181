"""Our DynamoDB attribute-value mapping gives exactly what boto3's serializers give."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from atc_xaccount import ddb_types

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9),
    st.text(max_size=12),
)
values = st.recursive(
    st.one_of(scalars, st.frozensets(st.text(max_size=5), min_size=1, max_size=4).map(set)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12,
)


def _sets_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS") else _sets_sorted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sets_sorted(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(values)
def test_serialize_and_deserialize_agree_with_boto3(value: Any) -> None:
    ours = ddb_types.serialize(value)
    assert _sets_sorted(ours) == _sets_sorted(TypeSerializer().serialize(value))
    assert ddb_types.deserialize(ours) == TypeDeserializer().deserialize(ours)


@pytest.mark.parametrize("bad", [1.5, {1, "a"}, Decimal("Infinity"), object()])
def test_what_boto3_refuses_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        TypeSerializer().serialize(bad)
    with pytest.raises(TypeError):
        ddb_types.serialize(bad)


def test_an_empty_set_is_refused_before_dynamodb_refuses_it() -> None:
    # boto3 serializes it as {"SS": []}; DynamoDB then rejects the request.
    with pytest.raises(TypeError):
        ddb_types.serialize(set())
