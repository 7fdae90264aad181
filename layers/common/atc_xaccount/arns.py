"""ARN helpers; every ARN is built from the region's partition, never a literal `arn:aws`."""

from __future__ import annotations

import re

_ACCOUNT_RE = re.compile(r"[0-9]{12}")

# Longest prefix first: "us-isob-" must win over "us-iso-".
_PARTITION_PREFIXES: tuple[tuple[str, str], ...] = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
)


def partition_for_region(region: str) -> str:
    """Partition of a region name; a wrong partition makes every ARN we write invalid."""
    if not region:
        raise ValueError("region must be a non-empty region name")
    for prefix, partition in _PARTITION_PREFIXES:
        if region.startswith(prefix):
            return partition
    return "aws"


def is_valid_account_id(s: object) -> bool:
    """Exactly 12 ASCII digits, as a string (an int would lose leading zeros)."""
    return isinstance(s, str) and _ACCOUNT_RE.fullmatch(s) is not None


def _iam_arn(partition: str, account: str, kind: str, name: str) -> str:
    if not partition:
        raise ValueError("partition must be non-empty")
    if not is_valid_account_id(account):
        raise ValueError(f"account must be 12 digits, got {account!r}")
    if not name:
        raise ValueError(f"{kind} name must be non-empty")
    return f"arn:{partition}:iam::{account}:{kind}/{name}"


def role_arn(partition: str, account: str, name: str) -> str:
    """ARN of an IAM role (the seed's `arn:aws:s3::...` form is not one)."""
    return _iam_arn(partition, account, "role", name)


def policy_arn(partition: str, account: str, name: str) -> str:
    """ARN of a customer managed policy."""
    return _iam_arn(partition, account, "policy", name)


def root_arn(partition: str, account: str) -> str:
    """ARN of an account root principal, which trust policies use to mean 'the whole account'."""
    if not is_valid_account_id(account):
        raise ValueError(f"account must be 12 digits, got {account!r}")
    return f"arn:{partition}:iam::{account}:root"


def split_arn(arn: str) -> tuple[str, str, str, str, str]:
    """(partition, service, region, account, resource); raises ValueError on a non-ARN."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[1], parts[2], parts[3], parts[4], parts[5]


def account_of_arn(arn: str) -> str:
    """Account field of an ARN; raises ValueError when the ARN has none (e.g. S3 buckets)."""
    account = split_arn(arn)[3]
    if not is_valid_account_id(account):
        raise ValueError(f"ARN has no 12-digit account: {arn!r}")
    return account


def partition_of_arn(arn: str) -> str:
    """Partition field of an ARN, so derived ARNs stay in the same partition."""
    return split_arn(arn)[0]


def is_role_arn(arn: object) -> bool:
    """True for `arn:<partition>:iam::<12 digits>:role/<path/>name`."""
    if not isinstance(arn, str):
        return False
    try:
        _, service, region, account, resource = split_arn(arn)
    except ValueError:
        return False
    return (
        service == "iam"
        and region == ""
        and is_valid_account_id(account)
        and resource.startswith("role/")
        and len(resource) > len("role/")
        and not resource.endswith("/")
    )
