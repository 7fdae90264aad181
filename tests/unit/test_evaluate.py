"""The trust/identity evaluator the verify step relies on (moto cannot answer this)."""

from __future__ import annotations

from typing import Any

import pytest
from policy_samples import NODE, ec2_statement, partner_statement, sample_trust

from atc_xaccount.evaluate import Decision, evaluate_identity, evaluate_trust, glob_match

EXT = "GoodExternalId0000000000000000001"
ROOT = "arn:aws:iam::111111111111:root"
OTHER_ROOT = "arn:aws:iam::999999999999:root"
ACCESS = "arn:aws:iam::222222222222:role/atc-s3-access-keys"


def allow(
    principal: Any = None, condition: Any = None, sid: str | None = None, effect: str = "Allow", **extra: Any
) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": effect, "Action": "sts:AssumeRole"}
    if sid:
        stmt["Sid"] = sid
    if principal is not None:
        stmt["Principal"] = principal
    if condition is not None:
        stmt["Condition"] = condition
    stmt.update(extra)
    return stmt


def deny(principal: Any = None, condition: Any = None, **extra: Any) -> dict[str, Any]:
    return allow(principal, condition, effect="Deny", **extra)


def ext_eq(*ids: str) -> dict[str, Any]:
    return {"StringEquals": {"sts:ExternalId": list(ids) if len(ids) > 1 else ids[0]}}


def doc(*stmts: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(stmts)}


AWS_NODE = {"AWS": NODE}

# (id, document, external id, extra context, allowed)
CASES: list[tuple[str, dict[str, Any], str | None, dict[str, Any] | None, bool]] = [
    # principal forms
    ("role-arn-exact", doc(allow(AWS_NODE, ext_eq(EXT))), EXT, None, True),
    (
        "role-arn-case-sensitive",
        doc(allow({"AWS": NODE.replace("atc-node", "ATC-node")}, ext_eq(EXT))),
        EXT,
        None,
        False,
    ),
    ("account-root", doc(allow({"AWS": ROOT}, ext_eq(EXT))), EXT, None, True),
    ("bare-account-id", doc(allow({"AWS": "111111111111"}, ext_eq(EXT))), EXT, None, True),
    ("other-account-root", doc(allow({"AWS": OTHER_ROOT}, ext_eq(EXT))), EXT, None, False),
    ("root-other-partition", doc(allow({"AWS": "arn:aws-cn:iam::111111111111:root"})), EXT, None, False),
    ("principal-star-string", doc(allow("*", ext_eq(EXT))), EXT, None, True),
    ("principal-aws-star", doc(allow({"AWS": "*"}, ext_eq(EXT))), EXT, None, True),
    ("aws-list", doc(allow({"AWS": [OTHER_ROOT, NODE]}, ext_eq(EXT))), EXT, None, True),
    ("service-never-matches", doc(ec2_statement()), EXT, None, False),
    ("service-star-never-matches", doc(allow({"Service": "*"})), EXT, None, False),
    ("unique-id-deleted-role", doc(allow({"AWS": "AROAEXAMPLEID123456"}, ext_eq(EXT))), EXT, None, False),
    ("no-principal-invalid", doc(allow(None, ext_eq(EXT))), EXT, None, False),
    # external id
    ("wrong-external-id", doc(allow(AWS_NODE, ext_eq(EXT))), "WrongId", None, False),
    ("missing-external-id", doc(allow(AWS_NODE, ext_eq(EXT))), None, None, False),
    ("external-id-in-list", doc(allow(AWS_NODE, ext_eq("a1", EXT, "b2"))), EXT, None, True),
    ("no-condition-needs-no-id", doc(allow(AWS_NODE)), None, None, True),
    ("external-id-case-sensitive", doc(allow(AWS_NODE, ext_eq(EXT))), EXT.lower(), None, False),
    ("key-name-case-insensitive", doc(allow(AWS_NODE, {"StringEquals": {"STS:EXTERNALID": EXT}})), EXT, None, True),
    # IAM refuses a misspelt operator ("Invalid Condition type"): never guessed, fails towards deny
    ("operator-name-case-sensitive", doc(allow(AWS_NODE, {"stringequals": {"sts:ExternalId": EXT}})), EXT, None, False),
    # string operators
    ("string-not-equals", doc(allow(AWS_NODE, {"StringNotEquals": {"sts:ExternalId": "bad"}})), EXT, None, True),
    ("string-not-equals-hit", doc(allow(AWS_NODE, {"StringNotEquals": {"sts:ExternalId": EXT}})), EXT, None, False),
    (
        "string-not-equals-absent-key",
        doc(allow(AWS_NODE, {"StringNotEquals": {"sts:ExternalId": "bad"}})),
        None,
        None,
        True,
    ),
    (
        "string-equals-ignore-case",
        doc(allow(AWS_NODE, {"StringEqualsIgnoreCase": {"sts:ExternalId": EXT.upper()}})),
        EXT,
        None,
        True,
    ),
    (
        "string-not-equals-ignore-case",
        doc(allow(AWS_NODE, {"StringNotEqualsIgnoreCase": {"sts:ExternalId": EXT.upper()}})),
        EXT,
        None,
        False,
    ),
    ("string-like-star", doc(allow(AWS_NODE, {"StringLike": {"sts:ExternalId": "Good*"}})), EXT, None, True),
    ("string-like-question", doc(allow(AWS_NODE, {"StringLike": {"sts:ExternalId": "a?c"}})), "abc", None, True),
    (
        "string-like-question-one-char",
        doc(allow(AWS_NODE, {"StringLike": {"sts:ExternalId": "a?c"}})),
        "abbc",
        None,
        False,
    ),
    ("string-like-case-sensitive", doc(allow(AWS_NODE, {"StringLike": {"sts:ExternalId": "good*"}})), EXT, None, False),
    ("string-not-like", doc(allow(AWS_NODE, {"StringNotLike": {"sts:ExternalId": "Good*"}})), EXT, None, False),
    (
        "string-equals-if-exists-absent",
        doc(allow(AWS_NODE, {"StringEqualsIfExists": {"sts:ExternalId": EXT}})),
        None,
        None,
        True,
    ),
    (
        "string-equals-if-exists-wrong",
        doc(allow(AWS_NODE, {"StringEqualsIfExists": {"sts:ExternalId": EXT}})),
        "Wrong",
        None,
        False,
    ),
    (
        "string-like-if-exists-present",
        doc(allow(AWS_NODE, {"StringLikeIfExists": {"sts:ExternalId": "Good*"}})),
        EXT,
        None,
        True,
    ),
    # ARN operators
    ("arn-equals", doc(allow({"AWS": ROOT}, {"ArnEquals": {"aws:PrincipalArn": NODE}})), None, None, True),
    (
        "arn-like-name",
        doc(allow({"AWS": ROOT}, {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/atc-*"}})),
        None,
        None,
        True,
    ),
    (
        "arn-like-miss",
        doc(allow({"AWS": ROOT}, {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ops-*"}})),
        None,
        None,
        False,
    ),
    (
        "arn-like-star-does-not-cross-colons",
        doc(allow({"AWS": ROOT}, {"ArnLike": {"aws:PrincipalArn": "arn:*:role/atc-node"}})),
        None,
        None,
        False,
    ),
    ("arn-not-equals", doc(allow({"AWS": ROOT}, {"ArnNotEquals": {"aws:PrincipalArn": NODE}})), None, None, False),
    (
        "arn-not-like",
        doc(allow({"AWS": ROOT}, {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x*"}})),
        None,
        None,
        True,
    ),
    (
        "arn-equals-if-exists-absent",
        doc(allow(AWS_NODE, {"ArnEqualsIfExists": {"aws:SourceArn": "arn:aws:s3:::b"}})),
        None,
        None,
        True,
    ),
    # Null and Bool
    (
        "null-true-denies-missing-id",
        doc(allow(AWS_NODE), deny(AWS_NODE, {"Null": {"sts:ExternalId": "true"}})),
        None,
        None,
        False,
    ),
    (
        "null-true-passes-present-id",
        doc(allow(AWS_NODE), deny(AWS_NODE, {"Null": {"sts:ExternalId": "true"}})),
        EXT,
        None,
        True,
    ),
    ("null-false-requires-key", doc(allow(AWS_NODE, {"Null": {"sts:ExternalId": "false"}})), EXT, None, True),
    ("null-false-missing-key", doc(allow(AWS_NODE, {"Null": {"sts:ExternalId": False}})), None, None, False),
    (
        "bool-true",
        doc(allow(AWS_NODE, {"Bool": {"aws:MultiFactorAuthPresent": "true"}})),
        None,
        {"aws:MultiFactorAuthPresent": True},
        True,
    ),
    (
        "bool-json-true-vs-false",
        doc(allow(AWS_NODE, {"Bool": {"aws:MultiFactorAuthPresent": True}})),
        None,
        {"aws:MultiFactorAuthPresent": "false"},
        False,
    ),
    ("bool-absent", doc(allow(AWS_NODE, {"Bool": {"aws:MultiFactorAuthPresent": "true"}})), None, None, False),
    (
        "bool-if-exists-absent",
        doc(allow(AWS_NODE, {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}})),
        None,
        None,
        True,
    ),
    # set operators on multi-valued keys
    (
        "for-any-value-hit",
        doc(allow(AWS_NODE, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "env"]}})),
        None,
        {"aws:TagKeys": ["cost", "env"]},
        True,
    ),
    (
        "for-any-value-miss",
        doc(allow(AWS_NODE, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}})),
        None,
        {"aws:TagKeys": ["cost", "env"]},
        False,
    ),
    (
        "for-any-value-absent",
        doc(allow(AWS_NODE, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}})),
        None,
        None,
        False,
    ),
    (
        "for-all-values-subset",
        doc(allow(AWS_NODE, {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}})),
        None,
        {"aws:TagKeys": ["env"]},
        True,
    ),
    (
        "for-all-values-not-subset",
        doc(allow(AWS_NODE, {"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}})),
        None,
        {"aws:TagKeys": ["team", "env"]},
        False,
    ),
    (
        "for-all-values-absent-vacuous",
        doc(allow(AWS_NODE, {"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}})),
        None,
        None,
        True,
    ),
    (
        "for-any-value-string-like",
        doc(allow(AWS_NODE, {"ForAnyValue:StringLike": {"aws:TagKeys": "te*"}})),
        None,
        {"aws:TagKeys": ["cost", "team"]},
        True,
    ),
    (
        "for-all-values-not-equals",
        doc(allow(AWS_NODE, {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}})),
        None,
        {"aws:TagKeys": ["team", "secret"]},
        False,
    ),
    (
        "for-any-value-if-exists-absent",
        doc(allow(AWS_NODE, {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "team"}})),
        None,
        None,
        True,
    ),
    # AND / OR
    (
        "keys-and",
        doc(allow(AWS_NODE, {"StringEquals": {"sts:ExternalId": EXT, "aws:PrincipalAccount": "999999999999"}})),
        EXT,
        None,
        False,
    ),
    (
        "operators-and",
        doc(allow(AWS_NODE, {**ext_eq(EXT), "StringLike": {"aws:PrincipalArn": "*atc-node"}})),
        EXT,
        None,
        True,
    ),
    (
        "principal-account-key",
        doc(allow({"AWS": "*"}, {"StringEquals": {"aws:PrincipalAccount": "111111111111"}})),
        None,
        None,
        True,
    ),
    # deny, NotPrincipal, NotAction
    ("deny-wins", doc(allow(AWS_NODE, ext_eq(EXT)), deny({"AWS": ROOT})), EXT, None, False),
    ("deny-other-account-irrelevant", doc(allow(AWS_NODE, ext_eq(EXT)), deny({"AWS": OTHER_ROOT})), EXT, None, True),
    # the node acts through a session: NotPrincipal spares it only when the session ARN is listed too
    (
        "not-principal-role-and-account-deny-the-session",
        doc(allow(AWS_NODE), deny(None, NotPrincipal={"AWS": [NODE, ROOT]})),
        None,
        None,
        False,
    ),
    (
        "not-principal-role-without-account",
        doc(allow(AWS_NODE), deny(None, NotPrincipal={"AWS": NODE})),
        None,
        None,
        False,
    ),
    ("not-principal-other", doc(allow(AWS_NODE), deny(None, NotPrincipal={"AWS": OTHER_ROOT})), None, None, False),
    ("not-action-covers", doc(allow(AWS_NODE, None, Action=None, NotAction="sts:TagSession")), None, None, True),
    ("not-action-excludes", doc(allow(AWS_NODE, None, Action=None, NotAction="sts:Assume*")), None, None, False),
    ("action-wildcard-case", doc(allow(AWS_NODE, None, Action="STS:Assume*")), None, None, True),
    ("action-other", doc(allow(AWS_NODE, None, Action="sts:AssumeRoleWithSAML")), None, None, False),
    # fail towards deny
    ("unknown-operator-allow", doc(allow(AWS_NODE, {"NumericEquals": {"sts:ExternalId": "1"}})), "1", None, False),
    ("unknown-operator-deny", doc(allow(AWS_NODE), deny(AWS_NODE, {"Frobnicate": {"k": "v"}})), None, None, False),
    (
        "null-if-exists-is-not-an-operator",
        doc(allow(AWS_NODE, {"NullIfExists": {"sts:ExternalId": "false"}})),
        EXT,
        None,
        False,
    ),
    (
        "policy-variable-undecidable",
        doc(allow(AWS_NODE, {"StringLike": {"sts:ExternalId": "${aws:username}"}})),
        "x",
        None,
        False,
    ),
    ("invalid-effect-ignored", doc(allow(AWS_NODE, effect="allow")), None, None, False),
    ("empty-policy", doc(), EXT, None, False),
]


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Drop Action=None placeholders used to build NotAction statements."""
    return {**d, "Statement": [{k: v for k, v in s.items() if v is not None} for s in d["Statement"]]}


@pytest.mark.parametrize(("document", "ext", "context", "allowed"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_evaluate_trust_table(
    document: dict[str, Any], ext: str | None, context: dict[str, Any] | None, allowed: bool
) -> None:
    decision = evaluate_trust(_clean(document), NODE, ext, context=context)
    assert decision.allowed is allowed, decision.reason


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_decision_names_statements_and_never_the_external_id() -> None:
    d = doc(allow(AWS_NODE, ext_eq(EXT), sid="Grant"), ec2_statement(), deny({"AWS": ROOT}, ext_eq(EXT)))
    decision = evaluate_trust(d, NODE, EXT)
    assert decision == Decision(False, decision.reason, ["Grant"], ["#2"])
    assert "#2" in decision.reason and EXT not in decision.reason


def test_unsupported_operator_is_reported_in_reason() -> None:
    decision = evaluate_trust(doc(allow(AWS_NODE, {"DateGreaterThan": {"aws:CurrentTime": "x"}})), NODE, None)
    assert not decision.allowed
    assert "unsupported condition operator DateGreaterThan" in decision.reason


def test_sample_trust_admits_only_the_partner_with_its_id() -> None:
    partner = "arn:aws:iam::333333333333:role/partner"
    assert evaluate_trust(sample_trust(), partner, "partner-ext-id-1234").matched_allow == ["PartnerAnalytics"]
    assert not evaluate_trust(sample_trust(), partner, "other").allowed
    assert not evaluate_trust(sample_trust(), NODE, "partner-ext-id-1234").allowed
    assert partner_statement()["Sid"] == "PartnerAnalytics"


def test_context_can_remove_a_key() -> None:
    d = doc(allow(AWS_NODE, ext_eq(EXT)))
    assert not evaluate_trust(d, NODE, EXT, context={"sts:ExternalId": None}).allowed


@pytest.mark.parametrize(
    ("pattern", "value", "ignore_case", "expected"),
    [
        ("s3:*", "s3:GetObject", True, True),
        ("s3:get*", "s3:GetObject", True, True),
        ("s3:get*", "s3:GetObject", False, False),
        ("a.c", "abc", False, False),
        ("a?c", "a/c", False, True),
        ("*", "", False, True),
        ("a[b]", "a[b]", False, True),
    ],
)
def test_glob_match(pattern: str, value: str, ignore_case: bool, expected: bool) -> None:
    assert glob_match(pattern, value, ignore_case=ignore_case) is expected


# --- identity policies --------------------------------------------------------------

BUCKET = "arn:aws:s3:::data-bucket"
S3_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Bucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            "Resource": BUCKET,
        },
        {
            "Sid": "Objects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": f"{BUCKET}/*",
        },
    ],
}
ASSUME = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AtcXaccountAssumeAccessRoles", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [ACCESS]}
    ],
}


@pytest.mark.parametrize(
    ("docs", "action", "resource", "allowed"),
    [
        pytest.param([ASSUME], "sts:AssumeRole", ACCESS, True, id="assume-allowed"),
        pytest.param([ASSUME], "sts:AssumeRole", ACCESS.replace("2222", "4444"), False, id="other-account-role"),
        pytest.param([S3_POLICY], "s3:ListBucket", BUCKET, True, id="bucket-action"),
        pytest.param([S3_POLICY], "s3:PutObject", f"{BUCKET}/dir/key", True, id="object"),
        pytest.param([S3_POLICY], "s3:PutObject", BUCKET, False, id="object-action-on-bucket"),
        pytest.param([S3_POLICY], "s3:getobject", f"{BUCKET}/k", True, id="action-case"),
        pytest.param([S3_POLICY], "s3:GetObject", "arn:aws:s3:::Data-bucket/k", False, id="resource-case-sensitive"),
        pytest.param([S3_POLICY], "s3:DeleteBucket", BUCKET, False, id="not-granted"),
        pytest.param(
            [S3_POLICY, {"Statement": [{"Effect": "Deny", "Action": "s3:*", "NotResource": f"{BUCKET}/public/*"}]}],
            "s3:GetObject",
            f"{BUCKET}/k",
            False,
            id="deny-not-resource-wins",
        ),
        pytest.param(
            [S3_POLICY, {"Statement": [{"Effect": "Deny", "Action": "s3:*", "NotResource": f"{BUCKET}/*"}]}],
            "s3:GetObject",
            f"{BUCKET}/k",
            True,
            id="not-resource-excludes",
        ),
        pytest.param(
            [{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}],
            "s3:GetObject",
            f"{BUCKET}/k",
            True,
            id="not-action",
        ),
        pytest.param(
            [
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "s3:*",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                        }
                    ]
                }
            ],
            "s3:GetObject",
            f"{BUCKET}/k",
            False,
            id="condition-without-context",
        ),
        pytest.param(
            [{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}]}],
            "s3:GetObject",
            f"{BUCKET}/k",
            False,
            id="principal-in-identity-policy",
        ),
        pytest.param([], "s3:GetObject", f"{BUCKET}/k", False, id="no-policies"),
    ],
)
def test_evaluate_identity(docs: list[dict[str, Any]], action: str, resource: str, allowed: bool) -> None:
    assert evaluate_identity(docs, action, resource).allowed is allowed


def test_evaluate_identity_context_and_labels() -> None:
    d = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            }
        ]
    }
    decision = evaluate_identity([S3_POLICY, d], "s3:GetObject", f"{BUCKET}/k", context={"aws:SecureTransport": True})
    assert decision.matched_allow == ["Objects", "#1.0"]
