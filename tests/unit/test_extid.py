"""Generated external IDs: long, random, and safe to paste into the Cluster Manager UI."""

from __future__ import annotations

import pytest

from atc_xaccount.extid import generate_external_id, is_valid_external_id


def test_generated_ids_are_valid_alnum_and_distinct() -> None:
    ids = {generate_external_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        assert len(value) == 32 and value.isalnum() and value.isascii()
        assert is_valid_external_id(value)


@pytest.mark.parametrize("length", [32, 64, 1224])
def test_lengths(length: int) -> None:
    assert len(generate_external_id(length)) == length


@pytest.mark.parametrize("length", [0, 31, 1225])
def test_refused_lengths(length: int) -> None:
    with pytest.raises(ValueError):
        generate_external_id(length)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("ab", True),
        ("a", False),
        ("a" * 1224, True),
        ("a" * 1225, False),
        ("A-z0+=,.@:/9", True),
        ("has space", False),
        ("semi;colon", False),
        ("ünï", False),
        (12345678, False),
        (None, False),
        ("ab\n", False),
    ],
)
def test_is_valid_external_id(value: object, valid: bool) -> None:
    assert is_valid_external_id(value) is valid
