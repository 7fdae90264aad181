"""The evaluator's principals: a role acts through its session, and NotPrincipal must name it (AWS docs)."""

from __future__ import annotations

from typing import Any

import pytest

from atc_xaccount.evaluate import (
    ALLOWED,
    DENIED,
    UNDECIDABLE,
    Who,
    evaluate_trust,
    judge_resource_policy,
)

S3 = "222222222222"
ROLE = f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
SESSION = f"arn:aws:sts::{S3}:assumed-role/atc-s3-access-keys/cm-1"
OTHER_SESSION = f"arn:aws:sts::{S3}:assumed-role/atc-s3-access-keys/cm-2"
ROOT = f"arn:aws:iam::{S3}:root"
USER = f"arn:aws:iam::{S3}:user/ops"
OBJECT = "arn:aws:s3:::b/k"
ALLOW = {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}


def bucket_policy(spared: list[str], *, effect: str = "Deny") -> dict[str, Any]:
    deny = {"Sid": "D", "Effect": effect, "NotPrincipal": {"AWS": spared}, "Action": "s3:*", "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [ALLOW, deny]}


def test_a_session_arn_is_read_as_its_role_and_session_name():
    who = Who(SESSION)
    assert (who.arn, who.session, who.session_arn, who.account) == (ROLE, "cm-1", SESSION, S3)
    assert Who(ROLE).session is None and Who(ROLE).session_arn is None
    assert Who(f"arn:aws:iam::{S3}:role/service/atc-node", session="i-1").session_arn == (
        f"arn:aws:sts::{S3}:assumed-role/atc-node/i-1"
    ), "a role's path is not part of its session ARN"
    with pytest.raises(ValueError, match="not an assumed-role session ARN"):
        Who(f"arn:aws:sts::{S3}:assumed-role/atc-s3-access-keys")


@pytest.mark.parametrize(
    ("who", "spared", "outcome"),
    [
        # The case: role and account listed, the session Cluster Manager signs with is not.
        (Who(SESSION), [ROLE, ROOT], DENIED),
        (Who(ROLE), [ROLE, ROOT], DENIED),
        (Who(SESSION), [SESSION, ROLE, ROOT], ALLOWED),
        (Who(SESSION), [SESSION, ROLE, S3], ALLOWED),
        (Who(OTHER_SESSION), [SESSION, ROLE, ROOT], DENIED),
        # the session is unknown here: whether it is the listed one decides it
        (Who(ROLE), [SESSION, ROLE, ROOT], UNDECIDABLE),
        # AWS checks the account, then the role, then the session: each must be spared
        (Who(SESSION), [SESSION, ROLE], DENIED),
        (Who(SESSION), [SESSION, ROOT], DENIED),
        (Who(SESSION), [ROOT], DENIED),
        (Who(SESSION), ["*"], ALLOWED),
        # a principal with a permissions boundary is always denied by a NotPrincipal Deny
        (Who(SESSION, boundary=True), [SESSION, ROLE, ROOT], DENIED),
        # a user is its account and itself
        (Who(USER), [USER, ROOT], "implicit"),
        (Who(USER), [USER], DENIED),
    ],
)
def test_not_principal_spares_a_session_only_when_account_role_and_session_are_listed(who, spared, outcome):
    judged = judge_resource_policy("bp", bucket_policy(spared), who, "s3:GetObject", OBJECT)
    assert judged.outcome == outcome, judged
    if outcome == UNDECIDABLE:
        assert judged.unknown_deny == ("bp:D",)
        assert "the session's name decides it" in judged.reason


def test_a_principal_naming_one_session_matches_that_session_only():
    policy = {"Statement": [{**ALLOW, "Principal": {"AWS": SESSION}}]}
    assert judge_resource_policy("bp", policy, Who(SESSION), "s3:GetObject", OBJECT).outcome == ALLOWED
    assert judge_resource_policy("bp", policy, Who(OTHER_SESSION), "s3:GetObject", OBJECT).outcome == "implicit"
    assert judge_resource_policy("bp", policy, Who(ROLE), "s3:GetObject", OBJECT).outcome == UNDECIDABLE
    # the role's ARN names all its sessions
    assert judge_resource_policy("bp", {"Statement": [ALLOW]}, Who(OTHER_SESSION), "s3:GetObject", OBJECT).allowed


def test_the_yes_no_decision_fails_towards_deny_where_the_session_decides():
    trust = bucket_policy([SESSION, ROLE, ROOT])
    decision = evaluate_trust(trust, ROLE, None, action="s3:GetObject")
    assert not decision.allowed and decision.matched_deny == ["D"]
    assert evaluate_trust(trust, Who(SESSION), None, action="s3:GetObject").allowed


def test_principal_arn_is_the_roles_not_the_sessions():
    """aws:PrincipalArn of an assumed-role session is the role's ARN, as in AWS."""
    policy = {"Statement": [{**ALLOW, "Principal": "*", "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}}}]}
    assert judge_resource_policy("bp", policy, Who(SESSION), "s3:GetObject", OBJECT).outcome == ALLOWED


@pytest.mark.parametrize(
    "operator", ["stringequals", "StringEQUALS", "forAnyValue:StringEquals", "Stringequalsifexists"]
)
def test_a_misspelt_operator_is_undecidable_as_iam_refuses_it(operator):
    policy = {"Statement": [{**ALLOW, "Condition": {operator: {"aws:PrincipalAccount": S3}}}]}
    judged = judge_resource_policy("bp", policy, Who(SESSION), "s3:GetObject", OBJECT)
    assert judged.outcome == UNDECIDABLE
    assert "operator names are case-sensitive" in judged.reason


def test_condition_key_names_are_case_insensitive():
    policy = {"Statement": [{**ALLOW, "Condition": {"StringEquals": {"AWS:PRINCIPALACCOUNT": S3}}}]}
    assert judge_resource_policy("bp", policy, Who(SESSION), "s3:GetObject", OBJECT).outcome == ALLOWED


def test_a_single_valued_operator_on_a_multivalued_key_is_undecidable():
    """IAM: multivalued keys require ForAnyValue/ForAllValues; what a plain operator does is not documented."""
    deny = {"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:CalledVia": "athena.amazonaws.com"}}}  # fmt: skip
    policy = {"Statement": [ALLOW, deny]}
    via = ["athena.amazonaws.com", "glue.amazonaws.com"]
    judged = judge_resource_policy("bp", policy, Who(SESSION), "s3:GetObject", OBJECT, context={"aws:CalledVia": via})
    assert judged.outcome == UNDECIDABLE and "multivalued" in judged.reason
    single = judge_resource_policy("bp", policy, Who(SESSION), "s3:GetObject", OBJECT, context={"aws:CalledVia": "x"})
    assert single.outcome == DENIED, "a key given as one value is single-valued"
    as_set = {**deny, "Condition": {"ForAnyValue:StringNotEquals": {"aws:CalledVia": "athena.amazonaws.com"}}}
    judged = judge_resource_policy(
        "bp", {"Statement": [ALLOW, as_set]}, Who(SESSION), "s3:GetObject", OBJECT, context={"aws:CalledVia": via}
    )
    assert judged.outcome == DENIED
