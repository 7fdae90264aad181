"""The three-valued judgements the chain is built on (`atc_xaccount.evaluate`)."""

from __future__ import annotations

from typing import Any

import pytest

from atc_xaccount.evaluate import (
    ALLOWED,
    DENIED,
    IMPLICIT,
    UNDECIDABLE,
    Judgement,
    Who,
    judge_identity,
    judge_resource_policy,
    judge_trust,
    within_boundary,
)

ROLE = "arn:aws:iam::222222222222:role/atc-s3-access-keys"
NODE = "arn:aws:iam::111111111111:role/atc-node"
OBJECTS = "arn:aws:s3:::b/*"
ALLOW_ALL = {"Sid": "All", "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def deny(condition: dict[str, Any], sid: str = "D") -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": condition}


@pytest.mark.parametrize(
    ("condition", "context", "outcome"),
    [
        ({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}, {}, UNDECIDABLE),
        ({"StringNotEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}, {}, UNDECIDABLE),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, UNDECIDABLE),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": True}, ALLOWED),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}, DENIED),
        ({"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}}, {"aws:PrincipalOrgID": "o-1"}, ALLOWED),
        ({"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}}, {"aws:PrincipalOrgID": "o-2"}, DENIED),
        # one known key that fails decides the statement, whatever the unknown one would say
        (
            {"StringNotEquals": {"aws:PrincipalOrgID": "o-1", "aws:SourceVpce": "vpce-1"}},
            {"aws:PrincipalOrgID": "o-1"},
            ALLOWED,
        ),
        ({"Null": {"aws:PrincipalOrgID": "true"}}, {"aws:PrincipalOrgID": "o-1"}, ALLOWED),
        ({"NumericLessThan": {"aws:PrincipalOrgID": "3"}}, {"aws:PrincipalOrgID": "o-1"}, UNDECIDABLE),
    ],
)
def test_a_deny_on_what_only_the_request_knows_is_undecidable(condition, context, outcome):
    judged = judge_resource_policy(
        "bp", doc(ALLOW_ALL, deny(condition)), Who(ROLE), "s3:GetObject", OBJECTS, context=context
    )
    assert judged.outcome == outcome, judged
    if outcome == UNDECIDABLE:
        assert judged.unknown_deny == ("bp:D",) and judged.why


def test_an_undecidable_deny_does_not_rescue_a_request_nothing_allows():
    judged = judge_identity([("p", doc())], "s3:GetObject", OBJECTS)
    assert judged.outcome == IMPLICIT
    maybe = judge_resource_policy(
        "bp", doc(deny({"StringNotEquals": {"aws:SourceVpce": "v"}})), Who(ROLE), "s3:GetObject", OBJECTS
    )
    assert maybe.outcome == IMPLICIT and maybe.unknown_deny == ("bp:D",)


def test_an_allow_that_only_might_match_is_undecidable_not_allowed():
    statement = {"Sid": "A", "Effect": "Allow", "Action": "s3:GetObject", "Resource": OBJECTS,
                 "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}  # fmt: skip
    judged = judge_identity([("p", doc(statement))], "s3:GetObject", "arn:aws:s3:::b/k")
    assert judged.outcome == UNDECIDABLE and judged.unknown == ("p:A",) and judged.unknown_deny == ()


@pytest.mark.parametrize(
    ("identity", "boundary", "outcome"),
    [(ALLOWED, ALLOWED, ALLOWED), (ALLOWED, IMPLICIT, IMPLICIT), (ALLOWED, UNDECIDABLE, UNDECIDABLE),
     (IMPLICIT, ALLOWED, IMPLICIT), (ALLOWED, DENIED, DENIED), (DENIED, IMPLICIT, DENIED)],
)  # fmt: skip
def test_identity_and_boundary_must_both_allow(identity, boundary, outcome):
    combined = within_boundary(Judgement(identity, "i"), Judgement(boundary, "b"))
    assert combined.outcome == outcome
    assert combined.reason.startswith("permissions boundary") == (combined.reason != "i")


def test_a_key_policy_naming_the_account_delegates_but_does_not_grant():
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "kms:*", "Resource": "*"}  # fmt: skip
    key = "arn:aws:kms:us-east-1:222222222222:key/k"
    assert judge_resource_policy("kp", doc(root), Who(ROLE), "kms:Decrypt", key).outcome == ALLOWED
    direct = judge_resource_policy("kp", doc(root), Who(ROLE), "kms:Decrypt", key, account_counts=False)
    assert direct.outcome == IMPLICIT
    denied = judge_resource_policy(
        "kp", doc({**root, "Effect": "Deny"}), Who(ROLE), "kms:Decrypt", key, account_counts=False
    )
    assert denied.outcome == DENIED, "a Deny naming the account refuses every principal in it"


def test_the_trust_judgement_matches_evaluate_trust_and_knows_the_unique_id():
    from atc_xaccount.evaluate import evaluate_trust
    from atc_xaccount.trust import grant_statement

    trust = doc(grant_statement(NODE, ["ext-1"]))
    for external_id in ("ext-1", "ext-2", None):
        assert judge_trust(trust, Who(NODE), external_id).allowed == evaluate_trust(trust, NODE, external_id).allowed
    by_id = doc({**grant_statement(NODE, ["ext-1"]), "Principal": {"AWS": "AROAEXAMPLE000000001"}})
    assert judge_trust(by_id, Who(NODE, "AROAEXAMPLE000000001"), "ext-1").allowed
    assert not judge_trust(by_id, Who(NODE, "AROAOTHER00000000001"), "ext-1").allowed
