"""Lint: our statements must be clean (errors), foreign ones only produce warnings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_samples import ACCESS_ROLE, NODE, NODE_SID, grant, partner_statement, sample_trust

from atc_xaccount.assume_policy import OWNED_SID, merge_assume_policy
from atc_xaccount.errors import PolicyLintFailed
from atc_xaccount.lint import Finding, lint_identity_policy, lint_trust_policy, raise_on_errors
from atc_xaccount.trust import merge_trust_grant

SEED_ARN = "arn:aws:s3::222222222222/atc-s3-access-keys"
EXT = "ExtIdForClusterOne0000000000000001"


def ours(resource: Any) -> dict[str, Any]:
    return {"Sid": OWNED_SID, "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": resource}


def codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in findings]


def test_seed_arn_is_an_error_in_our_statement() -> None:
    findings = lint_identity_policy({"Version": "2012-10-17", "Statement": [ours(SEED_ARN)]})
    assert codes(findings) == [("INVALID_ARN", "error")]
    assert findings[0].sid == OWNED_SID and findings[0].owned
    assert SEED_ARN in findings[0].message


def test_seed_arn_in_foreign_statement_is_a_warning() -> None:
    foreign = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": SEED_ARN}
    doc, _ = merge_assume_policy({"Version": "2012-10-17", "Statement": [foreign]}, ACCESS_ROLE)
    assert codes(lint_identity_policy(doc)) == [("INVALID_ARN", "warning")]


def test_our_merged_assume_policy_is_clean() -> None:
    doc, _ = merge_assume_policy(None, ACCESS_ROLE)
    doc, _ = merge_assume_policy(doc, "arn:aws-cn:iam::444444444444:role/atc-s3-access-keys")
    assert lint_identity_policy(doc) == []


def test_document_level_errors() -> None:
    findings = lint_identity_policy({"Version": "2012-10-18", "Statement": [ours(ACCESS_ROLE)]})
    assert ("INVALID_VERSION", "error") in codes(findings)


def test_duplicate_owned_sid_is_an_error() -> None:
    doc = {"Version": "2012-10-17", "Statement": [ours(ACCESS_ROLE), ours(ACCESS_ROLE)]}
    assert ("DUPLICATE_SID", "error") in codes(lint_identity_policy(doc))


def test_owned_sids_can_be_given() -> None:
    doc = {"Version": "2012-10-17", "Statement": [ours(SEED_ARN)]}
    assert codes(lint_identity_policy(doc, owned_sids=set())) == [("INVALID_ARN", "warning")]


def test_our_merged_trust_policy_is_clean() -> None:
    doc, _ = merge_trust_grant(sample_trust(), NODE, EXT)
    assert lint_trust_policy(doc, {NODE_SID}, "222222222222") == []


@pytest.mark.parametrize(
    ("stmt", "owned", "expected"),
    [
        pytest.param(grant(NODE_SID, NODE, EXT), True, [], id="owned-clean"),
        pytest.param(
            {**grant(NODE_SID, NODE, EXT), "Condition": {}},
            True,
            [("MISSING_EXTERNAL_ID", "error")],
            id="owned-no-external-id",
        ),
        pytest.param(
            {**grant(NODE_SID, NODE, EXT), "Condition": {"StringEqualsIfExists": {"sts:ExternalId": EXT}}},
            True,
            [("MISSING_EXTERNAL_ID", "error")],
            id="if-exists-does-not-count",
        ),
        pytest.param(
            {**grant(NODE_SID, NODE, EXT), "Condition": {}},
            False,
            [("MISSING_EXTERNAL_ID", "warning")],
            id="foreign-no-external-id",
        ),
        pytest.param({**grant("Bad-Sid", NODE, EXT)}, True, [("INVALID_SID", "error")], id="owned-invalid-sid"),
        pytest.param({**grant("Bad-Sid", NODE, EXT)}, False, [("INVALID_SID", "warning")], id="foreign-invalid-sid"),
        pytest.param(
            {"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            False,
            [("WILDCARD_PRINCIPAL", "warning")],
            id="foreign-wildcard",
        ),
        pytest.param(
            {"Sid": "Open", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
            True,
            [("WILDCARD_PRINCIPAL", "error")],
            id="owned-wildcard",
        ),
        pytest.param(
            {
                "Sid": "Open",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}},
            },
            True,
            [("MISSING_EXTERNAL_ID", "error")],
            id="wildcard-with-other-condition",
        ),
        pytest.param(
            {
                "Sid": "Same",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::222222222222:role/atc-node"},
                "Action": "sts:AssumeRole",
            },
            True,
            [],
            id="same-account-needs-no-id",
        ),
        pytest.param(
            {"Sid": "Same", "Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "sts:AssumeRole"},
            True,
            [],
            id="same-account-bare-id",
        ),
        pytest.param(
            {
                "Sid": "Gone",
                "Effect": "Allow",
                "Principal": {"AWS": "AROAEXAMPLE123"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": EXT}},
            },
            False,
            [("UNRESOLVED_PRINCIPAL", "warning")],
            id="deleted-role-unique-id",
        ),
        pytest.param(
            {"Sid": "Deny", "Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},
            True,
            [],
            id="deny-wildcard-is-fine",
        ),
        pytest.param(
            {"Sid": "NoPrincipal", "Effect": "Allow", "Action": "sts:AssumeRole"},
            True,
            [("MISSING_PRINCIPAL", "error")],
            id="owned-missing-principal",
        ),
        pytest.param(
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            False,
            [],
            id="service-principal",
        ),
    ],
)
def test_lint_trust_rules(stmt: dict[str, Any], owned: bool, expected: list[tuple[str, str]]) -> None:
    doc = {"Version": "2012-10-17", "Statement": [partner_statement(), stmt]}
    sids = {stmt["Sid"]} if owned and "Sid" in stmt else set()
    assert codes(lint_trust_policy(doc, sids, "222222222222")) == expected


def test_duplicate_sid_in_trust() -> None:
    doc = {"Statement": [grant(NODE_SID, NODE, EXT), grant(NODE_SID, NODE, "other-id")]}
    assert codes(lint_trust_policy(doc, {NODE_SID}, "222222222222")) == [("DUPLICATE_SID", "error")]


def test_raise_on_errors() -> None:
    warning = Finding("X", "warning", "w", None, False)
    raise_on_errors([warning], "atc-s3-assume-role", "111111111111")
    error = Finding("INVALID_ARN", "error", "bad", OWNED_SID, True)
    with pytest.raises(PolicyLintFailed) as info:
        raise_on_errors([warning, error], "atc-s3-assume-role", "111111111111")
    assert info.value.findings == [error.to_dict()]
    assert info.value.account == "111111111111"
    assert error.to_dict() == {
        "code": "INVALID_ARN",
        "severity": "error",
        "message": "bad",
        "sid": OWNED_SID,
        "owned": True,
    }


ROLE = "arn:aws:iam::222222222222:role/atc-s3-access-keys"

#: Documents on which our identity rules and parliament's must agree (rule code, severity in our statement).
AGREES_WITH_PARLIAMENT = {
    "seed-arn": ({"Version": "2012-10-17", "Statement": [ours(SEED_ARN)]}, [("INVALID_ARN", "error")]),
    "user-not-role": (
        {"Version": "2012-10-17", "Statement": [ours("arn:aws:iam::222222222222:user/bob")]},
        [("RESOURCE_MISMATCH", "error")],
    ),
    "policy-not-role": (
        {"Version": "2012-10-17", "Statement": [ours("arn:aws:iam::222222222222:policy/atc-s3-policy")]},
        [("RESOURCE_MISMATCH", "error")],
    ),
    "role": ({"Version": "2012-10-17", "Statement": [ours(ROLE)]}, []),
    "role-wildcards": ({"Version": "2012-10-17", "Statement": [ours("arn:aws:iam::*:role/atc-*")]}, []),
    "no-resource": (
        {"Version": "2012-10-17", "Statement": [{"Sid": OWNED_SID, "Effect": "Allow", "Action": "sts:AssumeRole"}]},
        [("MALFORMED", "error")],
    ),
    "lowercase-effect": (
        {"Version": "2012-10-17", "Statement": [{**ours(ROLE), "Effect": "allow"}]},
        [("MALFORMED", "error")],
    ),
    "unknown-element": (
        {"Version": "2012-10-17", "Statement": [{**ours(ROLE), "Principal2": "x"}]},
        [("MALFORMED", "error")],
    ),
    "old-version": ({"Version": "2008-10-17", "Statement": [ours(ROLE)]}, [("OLD_VERSION", "warning")]),
    "no-version": ({"Statement": [ours(ROLE)]}, [("NO_VERSION", "warning")]),
    "sid-characters": (
        {"Version": "2012-10-17", "Statement": [{**ours(ROLE), "Sid": "Atc-Xaccount"}]},
        [("INVALID_SID", "warning")],
    ),
}


@pytest.mark.parametrize(("doc", "expected"), AGREES_WITH_PARLIAMENT.values(), ids=AGREES_WITH_PARLIAMENT.keys())
def test_identity_rules(doc: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert codes(lint_identity_policy(doc)) == expected


@pytest.mark.parametrize(("doc", "expected"), AGREES_WITH_PARLIAMENT.values(), ids=AGREES_WITH_PARLIAMENT.keys())
def test_identity_rules_find_what_parliament_finds(doc: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    """parliament (a CI tool here, no longer in the Lambda layer) reports the same codes."""
    parliament = pytest.importorskip("parliament")
    found = parliament.analyze_policy_string(json.dumps(doc), ignore_private_auditors=True).findings
    assert sorted({f.issue for f in found}) == sorted({code for code, _ in expected})


def test_action_must_name_a_service() -> None:
    doc = {"Version": "2012-10-17", "Statement": [{**ours(ROLE), "Action": ["sts:AssumeRole", "AssumeRole"]}]}
    findings = lint_identity_policy(doc)
    assert codes(findings) == [("INVALID_ACTION", "error")]
    assert "AssumeRole" in findings[0].message


def test_statement_that_is_not_an_object_makes_the_document_unwritable() -> None:
    findings = lint_identity_policy({"Version": "2012-10-17", "Statement": [ours(ROLE), "sts:AssumeRole"]})
    assert codes(findings) == [("MALFORMED", "error")]


def test_role_arn_check_only_for_role_actions() -> None:
    s3 = {"Sid": "Reads", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::atc-demo/*"}
    assert lint_identity_policy({"Version": "2012-10-17", "Statement": [s3, ours(ROLE)]}) == []


def test_the_lambda_path_imports_no_linter_and_no_aws_sdk() -> None:
    """Cold start: lint, sessions and the handlers' glue import neither parliament nor botocore."""
    import subprocess
    import sys

    code = (
        "import sys, atc_xaccount.lint, atc_xaccount.runtime, atc_xaccount.sessions, atc_xaccount.observability\n"
        "print(sorted(m for m in ('parliament', 'boto3', 'botocore', 'aws_xray_sdk') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": ":".join(sys.path)}
    )
    assert out.stdout.strip() == "[]"
