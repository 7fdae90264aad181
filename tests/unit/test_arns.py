"""ARNs come from the region's partition; the seed's `arn:aws:s3::...` form is refused."""

from __future__ import annotations

import pytest

from atc_xaccount.arns import (
    account_of_arn,
    is_role_arn,
    is_valid_account_id,
    partition_for_region,
    policy_arn,
    role_arn,
    root_arn,
)


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("eu-west-1", "aws"),
        ("us-east-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("us-isof-south-1", "aws-iso-f"),
    ],
)
def test_partition_for_region(region: str, partition: str) -> None:
    assert partition_for_region(region) == partition


def test_partition_requires_region() -> None:
    with pytest.raises(ValueError):
        partition_for_region("")


def test_builders() -> None:
    assert role_arn("aws-cn", "222222222222", "atc-s3-access-keys") == (
        "arn:aws-cn:iam::222222222222:role/atc-s3-access-keys"
    )
    assert policy_arn("aws-us-gov", "111111111111", "atc-s3-assume-role") == (
        "arn:aws-us-gov:iam::111111111111:policy/atc-s3-assume-role"
    )
    assert root_arn("aws", "111111111111") == "arn:aws:iam::111111111111:root"


@pytest.mark.parametrize(("account", "name"), [("2222", "x"), (222222222222, "x"), ("222222222222", "")])
def test_builders_refuse_bad_parts(account: object, name: str) -> None:
    with pytest.raises(ValueError):
        role_arn("aws", account, name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        ("arn:aws:iam::111111111111:role/atc-node", "111111111111"),
        ("arn:aws-cn:sts::222222222222:assumed-role/r/s", "222222222222"),
    ],
)
def test_account_of_arn(arn: str, account: str) -> None:
    assert account_of_arn(arn) == account


@pytest.mark.parametrize("arn", ["arn:aws:s3::222222222222/atc-s3-access-keys", "arn:aws:s3:::bucket", "atc-node", ""])
def test_account_of_arn_refuses(arn: str) -> None:
    with pytest.raises(ValueError):
        account_of_arn(arn)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("111111111111", True),
        ("000000000000", True),
        ("11111111111", False),
        ("1111111111111", False),
        ("11111111111a", False),
        (111111111111, False),
        ("111111111111\n", False),
        ("\u0661" * 12, False),
        (None, False),
    ],
)
def test_is_valid_account_id(value: object, valid: bool) -> None:
    assert is_valid_account_id(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("arn:aws:iam::222222222222:role/atc-s3-access-keys", True),
        ("arn:aws:iam::222222222222:role/path/name", True),
        ("arn:aws:s3::222222222222/atc-s3-access-keys", False),
        ("arn:aws:iam::222222222222:policy/x", False),
        ("arn:aws:iam::222222222222:role/", False),
        ("arn:aws:iam:us-east-1:222222222222:role/x", False),
        (None, False),
    ],
)
def test_is_role_arn(value: object, valid: bool) -> None:
    assert is_role_arn(value) is valid


def test_no_literal_arn_aws_in_library_builders() -> None:
    import pathlib

    import atc_xaccount

    root = pathlib.Path(atc_xaccount.__file__).parent
    offenders = [p.name for p in root.glob("*.py") if '"arn:aws:' in p.read_text()]
    assert offenders == []
