"""The assume policy in the cluster manager account: our statement only, others untouched."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from policy_samples import ACCESS_ROLE

from atc_xaccount.assume_policy import (
    OWNED_SID,
    is_effectively_empty,
    merge_assume_policy,
    owned_resources,
    remove_assume_policy_resource,
)

ROLE_B = "arn:aws:iam::444444444444:role/atc-s3-access-keys"
ROLE_CN = "arn:aws-cn:iam::222222222222:role/atc-s3-access-keys"
FOREIGN = {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
FOREIGN_DENY = {
    "Sid": "NoProd",
    "Effect": "Deny",
    "Action": "sts:AssumeRole",
    "Resource": "arn:aws:iam::999999999999:role/*",
}


def ours(*arns: str) -> dict[str, Any]:
    return {"Sid": OWNED_SID, "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": list(arns)}


def doc(*stmts: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(stmts)}


@pytest.mark.parametrize(
    ("before", "arn", "after"),
    [
        pytest.param(None, ACCESS_ROLE, doc(ours(ACCESS_ROLE)), id="policy-does-not-exist"),
        pytest.param(None, ROLE_CN, doc(ours(ROLE_CN)), id="aws-cn"),
        pytest.param(doc(ours(ROLE_B)), ACCESS_ROLE, doc(ours(ACCESS_ROLE, ROLE_B)), id="second-role-sorted"),
        pytest.param(
            doc(FOREIGN, FOREIGN_DENY),
            ACCESS_ROLE,
            doc(FOREIGN, FOREIGN_DENY, ours(ACCESS_ROLE)),
            id="appended-after-foreign",
        ),
        pytest.param(
            doc(ours(ROLE_B), FOREIGN), ACCESS_ROLE, doc(ours(ACCESS_ROLE, ROLE_B), FOREIGN), id="keeps-position"
        ),
        pytest.param(
            {"Version": "2012-10-17", "Statement": FOREIGN},
            ACCESS_ROLE,
            doc(FOREIGN, ours(ACCESS_ROLE)),
            id="single-dict-statement",
        ),
    ],
)
def test_merge_assume_policy(before: dict[str, Any] | None, arn: str, after: dict[str, Any]) -> None:
    original = copy.deepcopy(before)
    result, changed = merge_assume_policy(before, arn)
    assert (result, changed) == (after, True)
    assert before == original


@pytest.mark.parametrize(
    "before",
    [
        doc(ours(ACCESS_ROLE)),
        doc(FOREIGN, {**ours(), "Resource": ACCESS_ROLE}),  # string, not list
        doc(ours(ROLE_B, ACCESS_ROLE)),  # unsorted
        {"Version": "2012-10-17", "Statement": ours(ACCESS_ROLE)},
    ],
)
def test_merge_already_present(before: dict[str, Any]) -> None:
    result, changed = merge_assume_policy(before, ACCESS_ROLE)
    assert (result, changed) == (before, False)


def test_merge_ignores_foreign_statement_with_same_resource() -> None:
    foreign = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ACCESS_ROLE}
    result, changed = merge_assume_policy(doc(foreign), ACCESS_ROLE)
    assert (result, changed) == (doc(foreign, ours(ACCESS_ROLE)), True)


@pytest.mark.parametrize(
    ("before", "arn", "after", "changed"),
    [
        pytest.param(
            doc(FOREIGN, ours(ACCESS_ROLE, ROLE_B)), ROLE_B, doc(FOREIGN, ours(ACCESS_ROLE)), True, id="one-of-two"
        ),
        pytest.param(doc(FOREIGN, ours(ACCESS_ROLE)), ACCESS_ROLE, doc(FOREIGN), True, id="last-removes-statement"),
        pytest.param(doc(ours(ACCESS_ROLE)), ACCESS_ROLE, doc(), True, id="to-empty"),
        pytest.param(doc(FOREIGN, ours(ROLE_B)), ACCESS_ROLE, doc(FOREIGN, ours(ROLE_B)), False, id="absent"),
        pytest.param(
            doc({**FOREIGN, "Action": "sts:AssumeRole", "Resource": ACCESS_ROLE}),
            ACCESS_ROLE,
            doc({**FOREIGN, "Action": "sts:AssumeRole", "Resource": ACCESS_ROLE}),
            False,
            id="foreign-never-touched",
        ),
    ],
)
def test_remove_assume_policy_resource(before: dict[str, Any], arn: str, after: dict[str, Any], changed: bool) -> None:
    original = copy.deepcopy(before)
    assert remove_assume_policy_resource(before, arn) == (after, changed)
    assert before == original


def test_owned_resources_and_emptiness() -> None:
    d = doc(FOREIGN, {**ours(), "Resource": [ROLE_B, ACCESS_ROLE]})
    assert owned_resources(d) == [ACCESS_ROLE, ROLE_B]
    assert owned_resources(None) == []
    assert not is_effectively_empty(d)
    assert is_effectively_empty(doc())
    assert is_effectively_empty({"Version": "2012-10-17"})


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3::222222222222/atc-s3-access-keys",  # the seed's wrong "ARN"
        "arn:aws:iam::222222222222:policy/atc-s3-policy",
        "arn:aws:iam::2222:role/x",
        "arn:aws:iam::222222222222:role/",
    ],
)
def test_merge_refuses_non_role_arns(arn: str) -> None:
    with pytest.raises(ValueError, match="not an IAM role ARN"):
        merge_assume_policy(None, arn)
