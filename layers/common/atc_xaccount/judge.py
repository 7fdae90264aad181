"""Three-valued judgements: what the access chain needs (issue 11).

`evaluate.Decision` answers yes/no and errs towards denying. The chain of an access key
must also say "this cannot be decided here": a condition on a key whose value only the
real request carries (the VPC endpoint, the source IP, the client's SSE header, ...).
A statement then matches `None`; an Allow that only might match never makes "allowed",
a Deny that only might match never makes "denied": the judgement is "undecidable".

Matching one action, resource, principal or condition key is `evaluate`'s own code,
shared so that the two evaluators cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from atc_xaccount.arns import split_arn
from atc_xaccount.documents import statements
from atc_xaccount.evaluate import (
    Context,
    _action_matches,
    _as_strings,
    _aws_entries,
    _context,
    _key_matches,
    _Principal,
    _resource_matches,
    _split_operator,
    _Undecidable,
)

ALLOWED, DENIED, IMPLICIT, UNDECIDABLE = "allowed", "denied", "implicit", "undecidable"

#: Keys known to be absent from an ATC node's requests (EC2 role sessions carry no MFA).
ABSENT_KEYS = frozenset({"aws:multifactorauthpresent", "aws:multifactorauthage"})


@dataclass(frozen=True)
class Judgement:
    """A three-valued decision: `allowed`, `denied` (explicit), `implicit` (no Allow), `undecidable`.

    `allow`/`deny` are the statements that matched; `unknown` those that might match, with
    `why` saying what they depend on. Labels are `policy:Sid`, or `policy#index` unnamed.
    """

    outcome: str
    reason: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    #: The Denies among `unknown`: what would refuse the request if its context matched.
    unknown_deny: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOWED

    @property
    def statements(self) -> tuple[str, ...]:
        """The statements that decided it: the Denies, else the Allows, plus the undecided ones."""
        decided = self.deny if self.outcome == DENIED else self.allow
        return (*decided, *self.unknown)


Tri = bool | None


def _condition_tri(condition: object, ctx: Context, absent: frozenset[str]) -> tuple[Tri, list[str]]:
    """Operators AND, keys AND: False as soon as one key fails; None when one cannot be judged."""
    if condition is None:
        return True, []
    if not isinstance(condition, dict):
        return None, ["Condition is not an object"]
    unknown: list[str] = []
    for operator, block in condition.items():
        if not isinstance(block, dict):
            unknown.append(f"condition block of {operator} is not an object")
            continue
        for key, values in block.items():
            name = str(key).lower()
            if name not in ctx and name not in absent:
                unknown.append(f"{operator} {key}: the request's own value of {key} decides it")
                continue
            try:
                prefix, base, if_exists = _split_operator(str(operator))
                wanted = _as_strings(values)
                if any("${" in w for w in wanted):
                    raise _Undecidable(f"policy variable in {operator} {key}")
            except _Undecidable as exc:
                unknown.append(str(exc))
                continue
            if not _key_matches(prefix, base, if_exists, wanted, ctx.get(name)):
                return False, []
    return (None, unknown) if unknown else (True, [])


@dataclass(frozen=True)
class Who:
    """The principal of a request: its ARN, account, partition and, for a role, its unique ID."""

    arn: str
    unique_id: str | None = None

    @property
    def account(self) -> str:
        return split_arn(self.arn)[3]

    @property
    def partition(self) -> str:
        return split_arn(self.arn)[0]

    def by_account(self, entry: object) -> bool:
        return isinstance(entry, str) and _Principal(self.arn, self.account, self.partition).is_account(entry)

    def by_name(self, entry: object) -> bool:
        """`*`, the exact ARN, or the role's unique ID (what IAM stores for the ARN)."""
        return isinstance(entry, str) and (
            entry in ("*", self.arn) or (bool(self.unique_id) and entry == self.unique_id)
        )


def _principal_tri(stmt: dict[str, Any], who: Who, *, account_counts: bool) -> Tri:
    """Principal/NotPrincipal of a resource or trust policy statement; None when malformed."""
    try:
        if "Principal" in stmt:
            entries = _aws_entries(stmt["Principal"])
            if entries is None:
                return True
            return any(who.by_name(e) or (account_counts and who.by_account(e)) for e in entries)
        if "NotPrincipal" in stmt:
            entries = _aws_entries(stmt["NotPrincipal"])
            if entries is None or "*" in entries:
                return False
            exempt = who.arn in entries and any(who.by_account(e) for e in entries)
            return not exempt
    except _Undecidable:
        return None
    return None


def _judge(
    labelled: list[tuple[str, dict[str, Any]]],
    matches: Callable[[dict[str, Any]], tuple[Tri, list[str]]],
    what: str,
) -> Judgement:
    """Explicit Deny wins; a Deny that might apply leaves an otherwise allowed request undecidable."""
    allow: list[str] = []
    deny: list[str] = []
    maybe_allow: list[str] = []
    maybe_deny: list[str] = []
    why: list[str] = []
    for label, stmt in labelled:
        effect = stmt.get("Effect")
        if effect not in ("Allow", "Deny"):
            continue
        matched, reasons = matches(stmt)
        if matched is None:
            (maybe_allow if effect == "Allow" else maybe_deny).append(label)
            why.extend(f"{label}: {r}" for r in reasons)
        elif matched:
            (allow if effect == "Allow" else deny).append(label)
    maybe = tuple(maybe_deny)
    if deny:
        return Judgement(DENIED, f"explicitly denied by {', '.join(deny)}", tuple(allow), tuple(deny))
    if not allow and not maybe_allow:
        return Judgement(IMPLICIT, f"no statement allows {what}", (), (), maybe, tuple(why), maybe)
    if maybe_deny or not allow:
        unknown = tuple(maybe_deny + (maybe_allow if not allow else []))
        relevant = tuple(w for w in why if w.split(": ", 1)[0] in unknown)
        return Judgement(
            UNDECIDABLE,
            f"{what} depends on the request: {'; '.join(relevant)}",
            tuple(allow),
            (),
            unknown,
            relevant,
            maybe,
        )
    return Judgement(ALLOWED, f"allowed by {', '.join(allow)}", tuple(allow))


def _labelled(named: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}:{s['Sid']}" if s.get("Sid") else f"{name}#{i}", s)
        for name, doc in named
        for i, s in enumerate(statements(doc))
    ]


def _and(*parts: Tri) -> Tri:
    if any(p is False for p in parts):
        return False
    return None if any(p is None for p in parts) else True


def _safe(check: Callable[[], bool]) -> Tri:
    try:
        return check()
    except _Undecidable:
        return None


def judge_identity(
    named: list[tuple[str, dict[str, Any]]],
    action: str,
    resource: str,
    *,
    context: Mapping[str, object] | None = None,
    absent: frozenset[str] = ABSENT_KEYS,
) -> Judgement:
    """Do these identity policies (name, document) allow `action` on `resource`, three-valued?"""
    ctx = _context({}, context)

    def matches(stmt: dict[str, Any]) -> tuple[Tri, list[str]]:
        if "Principal" in stmt or "NotPrincipal" in stmt:
            return None, ["identity policy statement names a Principal"]
        head = _and(_safe(lambda: _action_matches(stmt, action)), _safe(lambda: _resource_matches(stmt, resource)))
        if head is False:
            return False, []
        cond, why = _condition_tri(stmt.get("Condition"), ctx, absent)
        return _and(head, cond), why

    return _judge(_labelled(named), matches, f"{action} on {resource}")


def judge_resource_policy(
    name: str,
    doc: dict[str, Any] | None,
    who: Who,
    action: str,
    resource: str,
    *,
    context: Mapping[str, object] | None = None,
    account_counts: bool = True,
    absent: frozenset[str] = ABSENT_KEYS,
) -> Judgement:
    """A bucket, key or trust policy: does it allow (or deny) `who` `action` on `resource`?

    `account_counts=False` ignores Allows that name the principal's account (root or id)
    rather than the principal itself: in a key policy those delegate to IAM, they do not
    grant. Denies naming the account always count.
    """
    ctx = _context({"aws:PrincipalArn": who.arn, "aws:PrincipalAccount": who.account}, context)

    def matches(stmt: dict[str, Any]) -> tuple[Tri, list[str]]:
        counts = account_counts or stmt.get("Effect") == "Deny"
        head = _and(
            _principal_tri(stmt, who, account_counts=counts),
            _safe(lambda: _action_matches(stmt, action)),
            _safe(lambda: _resource_matches(stmt, resource)) if "Resource" in stmt or "NotResource" in stmt else True,
        )
        if head is False:
            return False, []
        cond, why = _condition_tri(stmt.get("Condition"), ctx, absent)
        return _and(head, cond), why

    return _judge(_labelled([(name, doc or {})]), matches, f"{action} on {resource} for {who.arn}")


def judge_trust(
    doc: dict[str, Any],
    who: Who,
    external_id: str | None,
    *,
    name: str = "trust",
    action: str = "sts:AssumeRole",
    context: Mapping[str, object] | None = None,
) -> Judgement:
    """`evaluate_trust`, three-valued: does the trust policy admit `who` with this external ID?"""
    extra: dict[str, object] = {"sts:ExternalId": external_id}
    extra.update(context or {})
    return judge_resource_policy(name, doc, who, action, "*", context=extra)


def within_boundary(identity: Judgement, boundary: Judgement | None) -> Judgement:
    """An action must be allowed by the identity policies AND the permissions boundary."""
    if boundary is None:
        return identity
    order = {DENIED: 0, IMPLICIT: 1, UNDECIDABLE: 2, ALLOWED: 3}
    if order[boundary.outcome] < order[identity.outcome]:
        return Judgement(
            boundary.outcome,
            f"permissions boundary: {boundary.reason}",
            boundary.allow,
            boundary.deny,
            boundary.unknown,
            boundary.why,
        )
    return identity
