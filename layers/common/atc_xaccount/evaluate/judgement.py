"""The one IAM evaluator: statements and a request in, a three-valued judgement out (pure).

Every statement is matched against the request (principal, action, resource, condition)
as `True`, `False` or `None` (cannot be judged here, with the reason). Then, as IAM does:
an explicit Deny wins; else an Allow allows; else the request is implicitly denied. A
statement that only *might* match never decides: an Allow that might match is not
"allowed", a Deny that might match leaves an otherwise allowed request "undecidable".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atc_xaccount.documents import statements
from atc_xaccount.evaluate.conditions import (
    Context,
    Tri,
    Undecidable,
    action_matches,
    condition_matches,
    context_of,
    resource_matches,
)
from atc_xaccount.evaluate.principals import Who, aws_entries, not_principal_applies, principal_names

ALLOWED, DENIED, IMPLICIT, UNDECIDABLE = "allowed", "denied", "implicit", "undecidable"

#: Keys known to be absent from an ATC node's requests (EC2 role sessions carry no MFA).
ABSENT_KEYS = frozenset({"aws:multifactorauthpresent", "aws:multifactorauthage"})


@dataclass(frozen=True)
class Judgement:
    """`allowed`, `denied` (explicit), `implicit` (no Allow) or `undecidable`, and why.

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


@dataclass(frozen=True)
class Request:
    """What is asked, by whom (None for identity policies), in which context.

    `absent` lists the context keys known to be missing; None means the context is the
    whole request (every key it does not carry is missing). `account_counts=False` makes
    an Allow naming the principal's account not apply (a key policy's delegation to IAM
    is not a grant); a Deny naming the account always applies.
    """

    action: str
    #: None: the policy's own resource (a trust policy's role, a bus), so `Resource` is not matched.
    resource: str | None
    context: Context
    absent: frozenset[str] | None
    who: Who | None = None
    account_counts: bool = True


def _and(*parts: Tri) -> Tri:
    if any(p is False for p in parts):
        return False
    return None if any(p is None for p in parts) else True


def _principal(stmt: dict[str, Any], request: Request) -> tuple[Tri, str]:
    who = request.who
    if who is None:
        if "Principal" in stmt or "NotPrincipal" in stmt:
            return None, "identity policy statement names a Principal"
        return True, ""
    deny = stmt.get("Effect") == "Deny"
    try:
        if "Principal" in stmt:
            counts = request.account_counts or deny
            named = principal_names(aws_entries(stmt["Principal"]), who, account_counts=counts)
            return named, "" if named is not None else "Principal names a session of the role: its name decides it"
        if "NotPrincipal" in stmt:
            applies = not_principal_applies(aws_entries(stmt["NotPrincipal"]), who, deny=deny)
            why = "NotPrincipal spares only the sessions it lists: the session's name decides it"
            return applies, "" if applies is not None else why
    except Undecidable as exc:
        return None, str(exc)
    return None, "statement has neither Principal nor NotPrincipal"


def statement_matches(stmt: dict[str, Any], request: Request) -> tuple[Tri, list[str]]:
    """Does one statement apply to the request: True, False, or None with what it depends on."""
    principal, principal_why = _principal(stmt, request)
    action = action_matches(stmt, request.action)
    # Identity policies must name a Resource; a resource policy may leave it out (the resource is its own).
    has_resource = "Resource" in stmt or "NotResource" in stmt or request.who is None
    resource = resource_matches(stmt, request.resource) if has_resource and request.resource is not None else True
    head = _and(principal, action, resource)
    if head is False:
        return False, []
    why = [principal_why] if principal is None else []
    if action is None:
        why.append("statement has neither Action nor NotAction")
    if resource is None:
        why.append("statement has neither Resource nor NotResource")
    cond, cond_why = condition_matches(stmt.get("Condition"), request.context, request.absent)
    result = _and(head, cond)
    return result, ([*why, *cond_why] if result is None else [])


def decide(labelled: list[tuple[str, dict[str, Any]]], request: Request, what: str) -> Judgement:
    """Explicit Deny wins; a Deny that might apply leaves an otherwise allowed request undecidable."""
    allow: list[str] = []
    deny: list[str] = []
    maybe_allow: list[str] = []
    maybe_deny: list[str] = []
    why: list[str] = []
    for label, stmt in labelled:
        effect = stmt.get("Effect")
        if effect not in ("Allow", "Deny"):
            continue  # IAM refuses any other Effect: such a statement grants and denies nothing
        matched, reasons = statement_matches(stmt, request)
        if matched is None:
            (maybe_allow if effect == "Allow" else maybe_deny).append(label)
            why.extend(f"{label}: {r}" for r in reasons)
        elif matched:
            (allow if effect == "Allow" else deny).append(label)
    maybe = tuple(maybe_deny)
    notes = f" ({'; '.join(why)})" if why else ""
    if deny:
        return Judgement(DENIED, f"explicitly denied by {', '.join(deny)}", tuple(allow), tuple(deny))
    if not allow and not maybe_allow:
        return Judgement(IMPLICIT, f"no statement allows {what}{notes}", (), (), maybe, tuple(why), maybe)
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
    return Judgement(ALLOWED, f"allowed by {', '.join(allow)}{notes}", tuple(allow))


def labelled(named: list[tuple[str, dict[str, Any] | None]]) -> list[tuple[str, dict[str, Any]]]:
    """Each statement of each (policy name, document) as `name:Sid`, or `name#index` when unnamed."""
    return [
        (f"{name}:{s['Sid']}" if s.get("Sid") else f"{name}#{i}", s)
        for name, doc in named
        for i, s in enumerate(statements(doc))
    ]


def judge_identity(
    named: list[tuple[str, dict[str, Any]]],
    action: str,
    resource: str,
    *,
    context: Mapping[str, object] | None = None,
    absent: frozenset[str] | None = ABSENT_KEYS,
) -> Judgement:
    """Do these identity policies (name, document) allow `action` on `resource`?"""
    request = Request(action, resource, context_of({}, context), absent)
    return decide(labelled(list(named)), request, f"{action} on {resource}")


def judge_resource_policy(
    name: str,
    doc: dict[str, Any] | None,
    who: Who,
    action: str,
    resource: str | None,
    *,
    context: Mapping[str, object] | None = None,
    account_counts: bool = True,
    absent: frozenset[str] | None = ABSENT_KEYS,
) -> Judgement:
    """A bucket, key or trust policy: does it allow (or deny) `who` `action` on `resource`?

    `aws:PrincipalArn` is the role's ARN for a session (not the session's), as in AWS.
    """
    base = {"aws:PrincipalArn": who.arn, "aws:PrincipalAccount": who.account}
    request = Request(action, resource, context_of(base, context), absent, who, account_counts)
    on = f" on {resource}" if resource is not None else ""
    return decide(labelled([(name, doc)]), request, f"{action}{on} for {who.arn}")


def judge_trust(
    doc: dict[str, Any],
    who: Who,
    external_id: str | None,
    *,
    name: str = "trust",
    action: str = "sts:AssumeRole",
    context: Mapping[str, object] | None = None,
    absent: frozenset[str] | None = ABSENT_KEYS,
) -> Judgement:
    """Does the trust policy admit `who` (a session of the role, usually) with this external ID?"""
    extra: dict[str, object] = {"sts:ExternalId": external_id}
    extra.update(context or {})
    return judge_resource_policy(name, doc, who, action, None, context=extra, absent=absent)


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
