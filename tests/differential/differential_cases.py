"""Generated cases for the differential test: the same request through our evaluator and theirs.

Five families, each a request the product judges, from a seeded generator (the same cases
every run): trust policies (AssumeRole by a role session, with an external ID), identity
policies, identity policies within a permissions boundary, bucket policies across accounts
(the access role's session) and bucket policies in the same account (a grant to the role
itself). Statements mix what people write: `NotPrincipal`, `NotAction`, `NotResource`,
wildcards, `StringLike`, `Null`, `ForAnyValue`/`ForAllValues`, `...IfExists`, condition keys
in any letter case, and now and then a misspelt operator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atc_xaccount.evaluate import (
    Judgement,
    Who,
    judge_identity,
    judge_resource_policy,
    judge_trust,
    within_boundary,
)

CM, S3, OTHER = "111111111111", "222222222222", "333333333333"
NODE_ROLE = f"arn:aws:iam::{CM}:role/atc-node"
NODE = f"arn:aws:sts::{CM}:assumed-role/atc-node/i-0abc123"
PARTNER_ROLE = f"arn:aws:iam::{OTHER}:role/partner"
PARTNER = f"arn:aws:sts::{OTHER}:assumed-role/partner/p-1"
ACCESS_ROLE = f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
ACCESS = f"arn:aws:sts::{S3}:assumed-role/atc-s3-access-keys/cm-session"
ACCESS_OTHER_SESSION = f"arn:aws:sts::{S3}:assumed-role/atc-s3-access-keys/other-session"
USER = f"arn:aws:iam::{OTHER}:user/ops"
BUCKET = "atc-demo"
KEY = f"arn:aws:kms:us-east-1:{S3}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
_ROOT_KMS = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{S3}:root"}, "Action": "kms:*", "Resource": "*"}
DEFAULT_KEY_POLICY = {"Version": "2012-10-17", "Statement": [_ROOT_KMS]}
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

#: key -> (kind, values a request may carry, values a policy may name)
KEYS: dict[str, tuple[str, list[Any], list[str]]] = {
    "sts:ExternalId": ("string", ["ext-1", "ext-2", "EXT-1"], ["ext-1", "ext-2", "EXT-1", "ext-*", "e?t-1", "*"]),
    "aws:PrincipalOrgID": ("string", ["o-aaaa1111", "o-bbbb2222"], ["o-aaaa1111", "o-AAAA1111", "o-*"]),
    "aws:PrincipalTag/team": ("string", ["blue", "Blue", "red"], ["blue", "BLUE", "r*", "?lue"]),
    "aws:SourceVpce": ("string", ["vpce-1", "vpce-2"], ["vpce-1", "vpce-*"]),
    "aws:SecureTransport": ("bool", ["true", "false"], ["true", "false"]),
    "aws:MultiFactorAuthPresent": ("bool", ["true", "false"], ["true", "false"]),
    "aws:CalledVia": (
        "multi",
        [["athena.amazonaws.com"], ["athena.amazonaws.com", "glue.amazonaws.com"], []],
        ["athena.amazonaws.com", "glue.amazonaws.com", "*.amazonaws.com", "glue*"],
    ),
}
ARN_PATTERNS = [NODE_ROLE, ACCESS_ROLE, "arn:aws:iam::*:role/atc-*", f"arn:aws:iam::{CM}:role/*", "arn:aws:iam::*:*"]
OPERATORS = {
    "string": ["StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
               "StringLike", "StringNotLike", "StringEqualsIfExists", "StringNotLikeIfExists", "Null"],
    "bool": ["Bool", "BoolIfExists", "Null"],
    "multi": ["ForAnyValue:StringEquals", "ForAllValues:StringEquals", "ForAnyValue:StringLike",
              "ForAllValues:StringNotLike", "ForAnyValue:StringNotEquals", "ForAllValues:StringEqualsIfExists",
              "Null"],
    "arn": ["ArnEquals", "ArnLike", "ArnNotLike", "ArnNotEquals", "StringLike", "ArnLikeIfExists"],
}  # fmt: skip
MISSPELT = ["stringequals", "StringLIKE", "forAnyValue:StringEquals", "Arnlike"]


def _case_variant(rng: random.Random, key: str) -> str:
    """IAM condition key names are case-insensitive: write them in any case."""
    return rng.choice([key, key.lower(), key.upper(), key[:1].upper() + key[1:]])


def _condition(rng: random.Random) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    for _ in range(rng.choice([1, 1, 2])):
        if rng.random() < 0.2:
            key, kind = "aws:PrincipalArn", "arn"
            values: list[str] = ARN_PATTERNS
        else:
            key = rng.choice(list(KEYS))
            kind, _, values = KEYS[key]
        # now and then a single-valued operator on a multivalued key, as people write it
        operator = rng.choice(OPERATORS["string" if kind == "multi" and rng.random() < 0.15 else kind])
        if rng.random() < 0.04:
            operator = rng.choice(MISSPELT)
        wanted: Any = rng.choice(["true", "false"]) if operator == "Null" else rng.sample(values, rng.choice([1, 2]))
        if isinstance(wanted, list) and len(wanted) == 1 and rng.random() < 0.5:
            wanted = wanted[0]
        condition.setdefault(operator, {})[_case_variant(rng, key)] = wanted
    return condition


def _context(rng: random.Random, principal_arn: str, account: str, *, external_id: bool) -> dict[str, Any]:
    ctx: dict[str, Any] = {"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": account}
    for key, (_, present, _) in KEYS.items():
        if key == "sts:ExternalId" and not external_id:
            continue
        if rng.random() < 0.55:
            value = rng.choice(present)
            if value != []:
                ctx[key] = value
    return ctx


def _actions(rng: random.Random, exact: str, others: list[str]) -> dict[str, Any]:
    service = exact.split(":")[0]
    choice = rng.random()
    if choice < 0.15:
        return {"NotAction": rng.choice([others[0], f"{service}:*", f"{exact[:-3]}*"])}
    forms = [exact, exact.lower(), exact.upper(), f"{service}:*", "*", f"{exact[:-3]}*", *others, [others[0], exact]]
    return {"Action": rng.choice(forms)}


#: Rewrites the documents of a case before our evaluator judges it again (the classes of difference).
Rewrite = Callable[[dict[str, Any], Who | None, dict[str, Any]], dict[str, Any]]


def unchanged(doc: dict[str, Any], who: Who | None, context: dict[str, Any]) -> dict[str, Any]:
    return doc


@dataclass
class Case:
    """One request, as the simulator takes it and as our evaluator judges it.

    `judge(rewrite, boundary_rule)` judges it again with every document rewritten, and
    with or without IAM's rule that a NotPrincipal Deny always denies a bounded principal.
    """

    family: str
    simulation: dict[str, Any]
    judge: Callable[[Rewrite, bool], Judgement]

    @property
    def ours(self) -> Judgement:
        return self.judge(unchanged, True)


def _simulation(principal: str, action: str, resource: str, owner: str, ctx: dict[str, Any], **policies: Any) -> Any:
    return {
        "request": {
            "principal": principal,
            "action": action,
            "resource": {"resource": resource, "accountId": owner},
            "contextVariables": ctx,
        },
        "identityPolicies": [{"name": f"p{i}", "policy": p} for i, p in enumerate(policies.get("identity", []))],
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
        **({"resourcePolicy": policies["policy"]} if "policy" in policies else {}),
        **(
            {"permissionBoundaryPolicies": [{"name": "b", "policy": policies["boundary"]}]}
            if "boundary" in policies
            else {}
        ),
    }


def _principal_block(rng: random.Random, session: str, role: str, account: str) -> Any:
    pool = [session, role, account, f"arn:aws:iam::{account}:root", f"arn:aws:iam::{OTHER}:root", USER,
            session.rsplit("/", 1)[0] + "/another-session"]  # fmt: skip
    if rng.random() < 0.12:
        return rng.choice(["*", {"AWS": "*"}, {"Service": "ec2.amazonaws.com"}])
    return {"AWS": rng.sample(pool, rng.choice([1, 1, 2, 3])) if rng.random() < 0.5 else rng.choice(pool)}


def _resource_statement(rng: random.Random, session: str, role: str, account: str, action: Any) -> dict[str, Any]:
    effect = "Deny" if rng.random() < 0.35 else "Allow"
    stmt: dict[str, Any] = {"Effect": effect}
    if effect == "Deny" and rng.random() < 0.4:
        stmt["NotPrincipal"] = {"AWS": rng.sample([session, role, f"arn:aws:iam::{account}:root", account],
                                                  rng.choice([1, 2, 2, 3]))}  # fmt: skip
    else:
        stmt["Principal"] = _principal_block(rng, session, role, account)
    stmt.update(action)
    if rng.random() < 0.7:
        stmt["Condition"] = _condition(rng)
    return stmt


def trust_case(rng: random.Random) -> Case:
    session, role, account = rng.choice([(NODE, NODE_ROLE, CM), (PARTNER, PARTNER_ROLE, OTHER)])
    statements = [
        _resource_statement(rng, session, role, account, _actions(rng, "sts:AssumeRole", ["sts:TagSession"]))
        for _ in range(rng.choice([1, 2, 2, 3]))
    ]
    trust = {"Version": "2012-10-17", "Statement": statements}
    ctx = _context(rng, role, account, external_id=rng.random() < 0.8)
    simulation = _simulation(session, "sts:AssumeRole", ACCESS_ROLE, S3, ctx, identity=[ALLOW_ALL], policy=trust)

    def judge(rewrite: Rewrite, boundary_rule: bool) -> Judgement:
        who = Who(session)
        return judge_trust(rewrite(trust, who, ctx), who, ctx.get("sts:ExternalId"), context=ctx, absent=None)

    return Case("trust", simulation, judge)


_S3_REQUESTS = [
    ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/home/a.txt"),
    ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/data/b.bin"),
    ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"),
]
_RESOURCES = [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*", f"arn:aws:s3:::{BUCKET}/home/*",
              f"arn:aws:s3:::{BUCKET}*", "arn:aws:s3:::ATC-demo/*", "*", "arn:aws:s3:::*/home/*",
              f"arn:aws:s3:::{BUCKET}/??ta/*", "arn:aws:kms:*:*:key/*"]  # fmt: skip


def _identity_statement(rng: random.Random, action: str) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": "Deny" if rng.random() < 0.3 else "Allow"}
    stmt.update(_actions(rng, action, ["s3:GetObject", "s3:ListBucket", "kms:Decrypt"]))
    key = "NotResource" if rng.random() < 0.15 else "Resource"
    stmt[key] = rng.sample(_RESOURCES, rng.choice([1, 1, 2]))
    if rng.random() < 0.6:
        stmt["Condition"] = _condition(rng)
    return stmt


def _identity_docs(rng: random.Random, action: str) -> list[dict[str, Any]]:
    return [
        {"Version": "2012-10-17", "Statement": [_identity_statement(rng, action) for _ in range(rng.choice([1, 2, 3]))]}
        for _ in range(rng.choice([1, 1, 2]))
    ]


def identity_case(rng: random.Random, *, boundary: bool) -> Case:
    action, resource = rng.choice([*_S3_REQUESTS, ("kms:Decrypt", KEY)])
    docs = _identity_docs(rng, action)
    ctx = _context(rng, ACCESS_ROLE, S3, external_id=False)
    policies: dict[str, Any] = {"identity": docs}
    limit = _identity_docs(rng, action)[0] if boundary else None
    if limit is not None:
        policies["boundary"] = limit

    def judge(rewrite: Rewrite, boundary_rule: bool) -> Judgement:
        named = [(f"p{i}", rewrite(d, None, ctx)) for i, d in enumerate(docs)]
        ours = judge_identity(named, action, resource, context=ctx, absent=None)
        if limit is None:
            return ours
        return within_boundary(
            ours, judge_identity([("b", rewrite(limit, None, ctx))], action, resource, context=ctx, absent=None)
        )

    if action.startswith("kms:"):
        policies["policy"] = DEFAULT_KEY_POLICY  # KMS asks the key policy first: this one delegates to IAM
    simulation = _simulation(ACCESS, action, resource, S3, ctx, **policies)
    return Case("boundary" if boundary else "identity", simulation, judge)


def bucket_case(rng: random.Random, *, same_account: bool) -> Case:
    """The access role's session and a bucket policy: across accounts (IAM allows all), or in its own."""
    action, resource = rng.choice(_S3_REQUESTS)
    statements = []
    for _ in range(rng.choice([1, 2, 3])):
        stmt = _resource_statement(rng, ACCESS, ACCESS_ROLE, S3, _actions(rng, action, ["s3:GetObject", "s3:*"]))
        stmt["Resource"] = rng.sample(_RESOURCES[:8], rng.choice([1, 2]))
        statements.append(stmt)
    policy = {"Version": "2012-10-17", "Statement": statements}
    bounded = not same_account and rng.random() < 0.15
    session = ACCESS_OTHER_SESSION if rng.random() < 0.15 else ACCESS
    ctx = _context(rng, ACCESS_ROLE, S3, external_id=False)
    extra: dict[str, Any] = {"boundary": ALLOW_ALL} if bounded else {}
    identity = [] if same_account else [ALLOW_ALL]
    simulation = _simulation(
        session, action, resource, S3 if same_account else OTHER, ctx, identity=identity, policy=policy, **extra
    )

    def judge(rewrite: Rewrite, boundary_rule: bool) -> Judgement:
        who = Who(session, boundary=bounded and boundary_rule)
        # In its own account a bucket policy grants by itself what it grants the role or session, not the account.
        doc = rewrite(policy, who, ctx)
        return judge_resource_policy(
            "bp", doc, who, action, resource, context=ctx, account_counts=not same_account, absent=None
        )

    return Case("bucket-same-account" if same_account else "bucket-cross-account", simulation, judge)


def generate(seed: int = 16, *, per_family: dict[str, int] | None = None) -> list[Case]:
    counts = per_family or {"trust": 900, "identity": 700, "boundary": 400, "bucket-cross-account": 900,
                            "bucket-same-account": 400}  # fmt: skip
    rng = random.Random(seed)
    makers = {
        "trust": lambda: trust_case(rng),
        "identity": lambda: identity_case(rng, boundary=False),
        "boundary": lambda: identity_case(rng, boundary=True),
        "bucket-cross-account": lambda: bucket_case(rng, same_account=False),
        "bucket-same-account": lambda: bucket_case(rng, same_account=True),
    }
    return [makers[family]() for family, count in counts.items() for _ in range(count)]
