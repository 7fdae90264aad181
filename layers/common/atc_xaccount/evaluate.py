"""A small IAM evaluator for trust and identity policies.

moto does not evaluate trust policies across accounts and there is no policy simulator
locally, so verification relies on this. Where it cannot decide (an unsupported operator,
a policy variable) it errs towards denying: such an Allow does not match, such a Deny does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from atc_xaccount.arns import is_valid_account_id, split_arn
from atc_xaccount.documents import as_list, statements


@dataclass(frozen=True)
class Decision:
    """Outcome plus the statements that decided it (Sid, or `#index` when unnamed)."""

    allowed: bool
    reason: str
    matched_allow: list[str] = field(default_factory=list)
    matched_deny: list[str] = field(default_factory=list)


Context = dict[str, list[str]]


@lru_cache(maxsize=1024)
def _glob_re(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` any run of characters, `?` exactly one."""
    return _glob_re(pattern, ignore_case).fullmatch(value) is not None


def _arn_like(value: str, pattern: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-separated parts matched on its own."""
    got, want = value.split(":", 5), pattern.split(":", 5)
    if len(got) != 6 or len(want) != 6:
        return False
    return all(glob_match(w, g) for w, g in zip(want, got, strict=True))


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    # base operator -> (value matches policy value, negated)
    "stringequals": (lambda v, p: v == p, False),
    "stringnotequals": (lambda v, p: v == p, True),
    "stringequalsignorecase": (lambda v, p: v.lower() == p.lower(), False),
    "stringnotequalsignorecase": (lambda v, p: v.lower() == p.lower(), True),
    "stringlike": (lambda v, p: glob_match(p, v), False),
    "stringnotlike": (lambda v, p: glob_match(p, v), True),
    "arnequals": (_arn_like, False),
    "arnlike": (_arn_like, False),
    "arnnotequals": (_arn_like, True),
    "arnnotlike": (_arn_like, True),
    "bool": (lambda v, p: v.lower() == p.lower(), False),
}


class _Undecidable(ValueError):
    """Internal: a condition this evaluator cannot judge; callers fail towards deny."""


def _as_strings(values: object) -> list[str]:
    out: list[str] = []
    for v in as_list(values):
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, (str, int, float)):
            out.append(str(v))
        else:
            raise _Undecidable(f"condition value of type {type(v).__name__}")
    return out


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    """('foranyvalue'|'forallvalues'|None, base operator, IfExists) all lower-case."""
    name = operator.lower()
    prefix = None
    for candidate in ("foranyvalue:", "forallvalues:"):
        if name.startswith(candidate):
            prefix, name = candidate[:-1], name[len(candidate) :]
    if_exists = name.endswith("ifexists") and name != "ifexists"
    if if_exists:
        name = name[: -len("ifexists")]
    if (name not in _OPERATORS and name != "null") or (name == "null" and if_exists):
        raise _Undecidable(f"unsupported condition operator {operator}")
    return prefix, name, if_exists


def _key_matches(prefix: str | None, base: str, if_exists: bool, wanted: list[str], got: list[str] | None) -> bool:
    """One key of one operator; `got` is None when the key is absent from the request."""
    absent = not got
    if base == "null":
        flags = [w.lower() for w in wanted if w.lower() in ("true", "false")]
        return any((flag == "true") == absent for flag in flags)
    match, negated = _OPERATORS[base]
    if absent:
        if if_exists or prefix == "forallvalues":
            return True
        # A negated operator is true when the key is missing; a positive one is false.
        return negated and prefix is None

    def hit(value: str) -> bool:
        return any(match(value, w) for w in wanted)

    present = got or []
    if prefix == "forallvalues":
        return all(hit(v) != negated for v in present)
    if prefix == "foranyvalue":
        return any(hit(v) != negated for v in present)
    found = any(hit(v) for v in present)
    return found != negated


def _condition_matches(condition: object, ctx: Context) -> bool:
    """Operators AND, keys AND, values OR; raises _Undecidable when it cannot tell."""
    if condition is None:
        return True
    if not isinstance(condition, dict):
        raise _Undecidable("Condition is not an object")
    for operator, block in condition.items():
        prefix, base, if_exists = _split_operator(str(operator))
        if not isinstance(block, dict):
            raise _Undecidable(f"condition block of {operator} is not an object")
        for key, values in block.items():
            wanted = _as_strings(values)
            if any("${" in w for w in wanted):
                raise _Undecidable(f"policy variable in {operator} {key}")
            if not _key_matches(prefix, base, if_exists, wanted, ctx.get(str(key).lower())):
                return False
    return True


def _action_matches(stmt: dict[str, Any], action: str) -> bool:
    if "Action" in stmt:
        return any(glob_match(str(p), action, ignore_case=True) for p in as_list(stmt["Action"]))
    if "NotAction" in stmt:
        return not any(glob_match(str(p), action, ignore_case=True) for p in as_list(stmt["NotAction"]))
    raise _Undecidable("statement has neither Action nor NotAction")


def _resource_matches(stmt: dict[str, Any], resource: str) -> bool:
    if "Resource" in stmt:
        return any(glob_match(str(p), resource) for p in as_list(stmt["Resource"]))
    if "NotResource" in stmt:
        return not any(glob_match(str(p), resource) for p in as_list(stmt["NotResource"]))
    raise _Undecidable("statement has neither Resource nor NotResource")


@dataclass(frozen=True)
class _Principal:
    arn: str
    account: str
    partition: str

    def is_account(self, entry: str) -> bool:
        """Bare account id or `arn:<p>:iam::<acct>:root` of the principal's own account."""
        if is_valid_account_id(entry):
            return entry == self.account
        return entry == f"arn:{self.partition}:iam::{self.account}:root"

    def granted_by(self, entry: object) -> bool:
        """Principal element semantics: `*`, the account (root or id), or the exact ARN."""
        if not isinstance(entry, str):
            return False
        return entry in ("*", self.arn) or self.is_account(entry)


def _aws_entries(block: object) -> list[Any] | None:
    """The AWS principals of a Principal block; None for `*`."""
    if block == "*":
        return None
    if isinstance(block, dict):
        return as_list(block.get("AWS"))
    raise _Undecidable("Principal is neither '*' nor an object")


def _principal_matches(stmt: dict[str, Any], who: _Principal) -> bool:
    if "Principal" in stmt:
        entries = _aws_entries(stmt["Principal"])
        return entries is None or any(who.granted_by(e) for e in entries)
    if "NotPrincipal" in stmt:
        entries = _aws_entries(stmt["NotPrincipal"])
        if entries is None or "*" in entries:
            return False
        # AWS evaluates the account and the role: both must be listed to be exempt.
        exempt = who.arn in entries and any(isinstance(e, str) and who.is_account(e) for e in entries)
        return not exempt
    raise _Undecidable("trust statement has neither Principal nor NotPrincipal")


def _decide(
    labelled: list[tuple[str, dict[str, Any]]],
    applies: Callable[[dict[str, Any]], bool],
    what: str,
) -> Decision:
    """Explicit Deny wins, then any Allow, else the implicit deny."""
    allows: list[str] = []
    denies: list[str] = []
    notes: list[str] = []
    for label, stmt in labelled:
        effect = stmt.get("Effect")
        if effect not in ("Allow", "Deny"):
            notes.append(f"{label}: Effect {effect!r} is invalid, statement ignored")
            continue
        try:
            matched = applies(stmt)
        except _Undecidable as exc:
            matched = effect == "Deny"
            treated = "applying" if matched else "not matching"
            notes.append(f"{label}: {exc}; treated as {treated}")
        if matched:
            (allows if effect == "Allow" else denies).append(label)
    suffix = f" ({'; '.join(notes)})" if notes else ""
    if denies:
        return Decision(False, f"explicitly denied by {', '.join(denies)}{suffix}", allows, denies)
    if allows:
        return Decision(True, f"allowed by {', '.join(allows)}{suffix}", allows, denies)
    return Decision(False, f"implicitly denied: no statement allows {what}{suffix}", allows, denies)


def _context(base: Mapping[str, object], extra: Mapping[str, object] | None) -> Context:
    """Lower-cased keys (IAM key names are case-insensitive); a None value removes a key."""
    ctx: Context = {}
    for key, value in [*base.items(), *(extra or {}).items()]:
        if value is None:
            ctx.pop(key.lower(), None)
        else:
            ctx[key.lower()] = _as_strings(value)
    return ctx


def evaluate_trust(
    doc: dict[str, Any],
    principal_arn: str,
    external_id: str | None,
    *,
    action: str = "sts:AssumeRole",
    context: dict[str, Any] | None = None,
) -> Decision:
    """Would this trust policy let `principal_arn` call `action` with this external ID?"""
    partition, _, _, account, _ = split_arn(principal_arn)
    who = _Principal(principal_arn, account, partition)
    base: dict[str, object] = {"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": account}
    if external_id is not None:
        base["sts:ExternalId"] = external_id
    ctx = _context(base, context)

    def applies(stmt: dict[str, Any]) -> bool:
        return (
            _principal_matches(stmt, who)
            and _action_matches(stmt, action)
            and _condition_matches(stmt.get("Condition"), ctx)
        )

    labelled = [(str(s.get("Sid") or f"#{i}"), s) for i, s in enumerate(statements(doc))]
    return _decide(labelled, applies, f"{action} for {principal_arn}")


def evaluate_identity(
    docs: list[dict[str, Any]],
    action: str,
    resource: str,
    *,
    context: dict[str, Any] | None = None,
) -> Decision:
    """Do these identity policies allow `action` on `resource`? Labels: Sid or `#doc.index`."""
    ctx = _context({}, context)

    def applies(stmt: dict[str, Any]) -> bool:
        if "Principal" in stmt or "NotPrincipal" in stmt:
            raise _Undecidable("identity policy statement names a Principal")
        return (
            _action_matches(stmt, action)
            and _resource_matches(stmt, resource)
            and _condition_matches(stmt.get("Condition"), ctx)
        )

    labelled = [
        (str(s.get("Sid") or f"#{d}.{i}"), s) for d, doc in enumerate(docs) for i, s in enumerate(statements(doc))
    ]
    return _decide(labelled, applies, f"{action} on {resource}")
