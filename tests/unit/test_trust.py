"""Trust-policy grants: exact documents after merge/remove, foreign statements untouched."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from policy_samples import (
    NODE,
    NODE2,
    NODE2_SID,
    NODE_SID,
    PARTNER,
    ec2_statement,
    grant,
    partner_statement,
    sample_trust,
)

from atc_xaccount.trust import (
    admits_nobody_statement,
    grant_external_ids,
    grant_sid,
    grant_statement,
    merge_trust_grant,
    owned_sids,
    remove_trust_grant,
)

EXT = "ExtIdForClusterOne0000000000000001"
EXT2 = "ExtIdForClusterTwo0000000000000002"
DENY = {
    "Sid": "DenyOldPartner",
    "Effect": "Deny",
    "Principal": {"AWS": "arn:aws:iam::555555555555:root"},
    "Action": "sts:AssumeRole",
}


def doc(*stmts: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(stmts)}


@pytest.mark.parametrize(
    ("arn", "sid"),
    [
        (NODE, NODE_SID),
        (NODE2, NODE2_SID),
        ("arn:aws-cn:iam::111111111111:role/atc-node", "AtcXaccount111111111111atcnode1f80b217"),
        (
            "arn:aws:iam::111111111111:role/ops/atc_node.v2",
            "AtcXaccount111111111111opsatcnodev2d7cd7543",
        ),
    ],
)
def test_grant_sid_is_stable(arn: str, sid: str) -> None:
    # Changing a Sid would orphan every grant already written: pin the exact values.
    assert grant_sid(arn) == sid


def test_grant_sid_is_alnum_and_bounded_for_long_paths() -> None:
    arn = "arn:aws:iam::111111111111:role/" + "p/" * 200 + "atc-node"
    sid = grant_sid(arn)
    assert sid.isalnum() and sid.isascii() and len(sid) <= 100


def test_grant_sid_differs_when_name_loses_characters() -> None:
    a = grant_sid("arn:aws:iam::111111111111:role/atc-node")
    b = grant_sid("arn:aws:iam::111111111111:role/atcnode")
    assert a != b


@pytest.mark.parametrize(
    ("before", "principal", "ext", "after"),
    [
        pytest.param(
            sample_trust(),
            NODE,
            EXT,
            doc(ec2_statement(), partner_statement(), grant(NODE_SID, NODE, EXT)),
            id="first-grant-appended-after-foreign",
        ),
        pytest.param(
            doc(ec2_statement(), partner_statement(), grant(NODE_SID, NODE, EXT)),
            NODE,
            EXT2,
            doc(ec2_statement(), partner_statement(), grant(NODE_SID, NODE, [EXT, EXT2])),
            id="second-cluster-same-principal-list-of-two",
        ),
        pytest.param(
            doc(ec2_statement(), grant(NODE_SID, NODE, EXT2)),
            NODE,
            EXT,
            doc(ec2_statement(), grant(NODE_SID, NODE, [EXT, EXT2])),
            id="ids-sorted",
        ),
        pytest.param(
            doc(ec2_statement(), partner_statement(), grant(NODE_SID, NODE, EXT)),
            NODE2,
            EXT2,
            doc(ec2_statement(), partner_statement(), grant(NODE_SID, NODE, EXT), grant(NODE2_SID, NODE2, EXT2)),
            id="second-principal-second-statement",
        ),
        pytest.param(
            doc(ec2_statement()),
            "arn:aws:iam::222222222222:role/atc-node",
            EXT,
            doc(
                ec2_statement(),
                grant("AtcXaccount222222222222atcnode8f432507", "arn:aws:iam::222222222222:role/atc-node", EXT),
            ),
            id="same-account",
        ),
        pytest.param(
            doc(ec2_statement()),
            "arn:aws-cn:iam::111111111111:role/atc-node",
            EXT,
            doc(
                ec2_statement(),
                grant("AtcXaccount111111111111atcnode1f80b217", "arn:aws-cn:iam::111111111111:role/atc-node", EXT),
            ),
            id="aws-cn-partition",
        ),
        pytest.param(
            doc(DENY, ec2_statement()),
            NODE,
            EXT,
            doc(DENY, ec2_statement(), grant(NODE_SID, NODE, EXT)),
            id="deny-preserved-in-place",
        ),
        pytest.param(
            {"Version": "2012-10-17", "Statement": ec2_statement()},
            NODE,
            EXT,
            doc(ec2_statement(), grant(NODE_SID, NODE, EXT)),
            id="statement-as-single-dict",
        ),
        pytest.param(
            doc(grant(NODE_SID, NODE, EXT), ec2_statement()),
            NODE,
            EXT2,
            doc(grant(NODE_SID, NODE, [EXT, EXT2]), ec2_statement()),
            id="our-statement-keeps-its-position",
        ),
    ],
)
def test_merge_trust_grant(before: dict[str, Any], principal: str, ext: str, after: dict[str, Any]) -> None:
    original = copy.deepcopy(before)
    result, changed = merge_trust_grant(before, principal, ext)
    assert result == after
    assert changed is True
    assert before == original  # input never mutated


@pytest.mark.parametrize(
    "before",
    [
        pytest.param(doc(ec2_statement(), grant(NODE_SID, NODE, EXT)), id="exact"),
        pytest.param(doc(ec2_statement(), grant(NODE_SID, NODE, [EXT])), id="list-of-one"),
        pytest.param(doc(ec2_statement(), grant(NODE_SID, NODE, [EXT2, EXT])), id="unsorted-list"),
        pytest.param(
            doc(
                ec2_statement(),
                {**grant(NODE_SID, NODE, EXT), "Action": ["sts:AssumeRole"], "Principal": {"AWS": [NODE]}},
            ),
            id="lists-instead-of-strings",
        ),
        pytest.param(
            doc(
                ec2_statement(), {**grant(NODE_SID, NODE, EXT), "Condition": {"stringequals": {"STS:EXTERNALID": EXT}}}
            ),
            id="operator-and-key-case",
        ),
        pytest.param(
            {"Version": "2012-10-17", "Statement": grant(NODE_SID, NODE, EXT)},
            id="single-dict-statement",
        ),
    ],
)
def test_merge_already_present_is_unchanged(before: dict[str, Any]) -> None:
    result, changed = merge_trust_grant(before, NODE, EXT)
    assert changed is False
    assert result == before
    assert result is not before


def test_merge_does_not_adopt_foreign_grant_for_same_principal() -> None:
    # A hand-written seed grant is not ours: we add our own statement beside it.
    seed = {
        "Effect": "Allow",
        "Principal": {"AWS": NODE},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": EXT}},
    }
    result, changed = merge_trust_grant(doc(ec2_statement(), seed), NODE, EXT)
    assert changed is True
    assert result == doc(ec2_statement(), seed, grant(NODE_SID, NODE, EXT))


@pytest.mark.parametrize(
    ("before", "principal", "ext", "after"),
    [
        pytest.param(
            doc(ec2_statement(), partner_statement(), grant(NODE_SID, NODE, [EXT, EXT2])),
            NODE,
            EXT2,
            doc(ec2_statement(), partner_statement(), grant(NODE_SID, NODE, EXT)),
            id="one-of-two-ids",
        ),
        pytest.param(
            doc(ec2_statement(), grant(NODE_SID, NODE, EXT), partner_statement()),
            NODE,
            EXT,
            doc(ec2_statement(), partner_statement()),
            id="last-id-removes-statement",
        ),
        pytest.param(
            doc(grant(NODE_SID, NODE, EXT), grant(NODE2_SID, NODE2, EXT)),
            NODE2,
            EXT,
            doc(grant(NODE_SID, NODE, EXT)),
            id="other-principal-untouched",
        ),
        pytest.param(
            {"Version": "2012-10-17", "Statement": grant(NODE_SID, NODE, EXT)},
            NODE,
            EXT,
            doc(admits_nobody_statement()),
            id="single-dict-to-admits-nobody",
        ),
    ],
)
def test_remove_trust_grant(before: dict[str, Any], principal: str, ext: str, after: dict[str, Any]) -> None:
    original = copy.deepcopy(before)
    result, changed = remove_trust_grant(before, principal, ext)
    assert (result, changed) == (after, True)
    assert before == original


@pytest.mark.parametrize(
    ("before", "principal", "ext"),
    [
        pytest.param(sample_trust(), NODE, EXT, id="no-grant"),
        pytest.param(doc(grant(NODE_SID, NODE, EXT)), NODE, EXT2, id="other-id"),
        pytest.param(doc(grant(NODE_SID, NODE, EXT)), NODE2, EXT, id="other-principal"),
        pytest.param(doc(partner_statement()), PARTNER, "partner-ext-id-1234", id="foreign-grant-never-removed"),
    ],
)
def test_remove_absent_is_unchanged(before: dict[str, Any], principal: str, ext: str) -> None:
    result, changed = remove_trust_grant(before, principal, ext)
    assert (result, changed) == (before, False)


def test_merge_then_remove_restores_sample_exactly() -> None:
    merged, _ = merge_trust_grant(sample_trust(), NODE, EXT)
    restored, changed = remove_trust_grant(merged, NODE, EXT)
    assert changed is True
    assert restored == sample_trust()


def test_grant_external_ids_and_owned_sids() -> None:
    d = doc(partner_statement(), grant(NODE_SID, NODE, [EXT2, EXT]), grant(NODE2_SID, NODE2, EXT))
    assert grant_external_ids(d, NODE) == [EXT, EXT2]
    assert grant_external_ids(d, NODE2) == [EXT]
    assert grant_external_ids(d, PARTNER) == []  # foreign grants are not ours
    assert owned_sids(d) == {NODE_SID, NODE2_SID}


def test_grant_statement_shape() -> None:
    assert grant_statement(NODE, [EXT2, EXT, EXT]) == grant(NODE_SID, NODE, [EXT, EXT2])


@pytest.mark.parametrize(
    ("principal", "ext"),
    [
        ("arn:aws:s3::222222222222/atc-s3-access-keys", EXT),  # the seed's non-ARN
        ("arn:aws:s3:::bucket", EXT),
        ("atc-node", EXT),
        (NODE, "x"),
        (NODE, "has space in it"),
    ],
)
def test_merge_refuses_bad_input(principal: str, ext: str) -> None:
    with pytest.raises(ValueError) as info:
        merge_trust_grant(sample_trust(), principal, ext)
    assert "has space" not in str(info.value)  # external IDs never echoed
