"""Matching one value, action, resource or Condition block, three-valued (pure).

`True`/`False` when the request decides it, `None` (with the reason) when it cannot be
judged here: an operator this evaluator does not implement, a policy variable, a
malformed block, or a key whose value only the real request carries.

IAM's rules followed here (docs: "IAM JSON policy elements: Condition operators"):
condition *key* names are case-insensitive; operator names are case-sensitive (IAM refuses
`stringequals` with "Invalid Condition type", so such a block is judged undecidable, not
guessed); values compare case-sensitively except with the IgnoreCase operators; a missing
key fails a positive operator, satisfies a negated one, `...IfExists` and `ForAllValues`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from atc_xaccount.documents import as_list

Tri = bool | None


class Context(dict[str, list[str]]):
    """The request's condition keys, lower-cased, each with its values; `multivalued` are the
    keys given as a list (`aws:CalledVia`, `aws:TagKeys`, ...), which need ForAnyValue/ForAllValues."""

    def __init__(self) -> None:
        super().__init__()
        self.multivalued: set[str] = set()


class Undecidable(ValueError):
    """Something this evaluator cannot judge; the caller turns it into `None`."""


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


def _bool_value(value: str, pattern: str) -> bool:
    return value.lower() == pattern.lower()


#: Operator (exactly as IAM spells it) -> (a request value matches a policy value, negated).
OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda v, p: v == p, False),
    "StringNotEquals": (lambda v, p: v == p, True),
    "StringEqualsIgnoreCase": (lambda v, p: v.lower() == p.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda v, p: v.lower() == p.lower(), True),
    "StringLike": (lambda v, p: glob_match(p, v), False),
    "StringNotLike": (lambda v, p: glob_match(p, v), True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool_value, False),
}
_SET_PREFIXES = ("ForAnyValue", "ForAllValues")
#: Every operator IAM accepts, lower-cased: a block spelled otherwise is a typo IAM would refuse.
_SPELLINGS = frozenset(
    f"{prefix}{base}{suffix}".lower()
    for prefix in ("", "ForAnyValue:", "ForAllValues:")
    for base in OPERATORS
    for suffix in ("", "IfExists")
) | {"null"}


def as_strings(values: object) -> list[str]:
    """Condition and context values as IAM compares them: JSON booleans and numbers as text."""
    out: list[str] = []
    for v in as_list(values):
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, (str, int, float)):
            out.append(str(v))
        else:
            raise Undecidable(f"condition value of type {type(v).__name__}")
    return out


def split_operator(operator: str) -> tuple[str | None, str, bool]:
    """(`ForAnyValue`|`ForAllValues`|None, base operator, IfExists); Undecidable if IAM knows no such operator."""
    prefix, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists") and name != "IfExists"
    base = name[: -len("IfExists")] if if_exists else name
    if prefix in ("", *_SET_PREFIXES) and (base in OPERATORS or (base == "Null" and not if_exists and not prefix)):
        return prefix or None, base, if_exists
    if operator.lower() in _SPELLINGS:
        raise Undecidable(f"{operator} is not spelled as IAM spells it (operator names are case-sensitive)")
    raise Undecidable(f"unsupported condition operator {operator}")


def key_matches(prefix: str | None, base: str, if_exists: bool, wanted: list[str], got: list[str] | None) -> bool:
    """One key of one operator; `got` is None (or empty) when the key is absent from the request."""
    absent = not got
    if base == "Null":
        flags = [w.lower() for w in wanted if w.lower() in ("true", "false")]
        return any((flag == "true") == absent for flag in flags)
    match, negated = OPERATORS[base]
    if absent:
        if if_exists or prefix == "ForAllValues":
            return True
        # A negated operator is true when the key is missing; a positive one is false.
        return negated and prefix is None

    def hit(value: str) -> bool:
        return any(match(value, w) for w in wanted)

    present = got or []
    if prefix == "ForAllValues":
        return all(hit(v) != negated for v in present)
    if prefix == "ForAnyValue":
        return any(hit(v) != negated for v in present)
    return any(hit(v) for v in present) != negated


def condition_matches(condition: object, ctx: Context, absent: frozenset[str] | None) -> tuple[Tri, list[str]]:
    """Operators AND, keys AND, values OR: False as soon as one key fails, None when one cannot be judged.

    `absent` lists the keys known to be missing from the request; None means every key
    the context does not carry is missing (the request is fully known).
    """
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
            try:
                prefix, base, if_exists = split_operator(str(operator))
                wanted = as_strings(values)
                if any("${" in w for w in wanted):
                    raise Undecidable(f"policy variable in {operator} {key}")
            except Undecidable as exc:
                unknown.append(str(exc))
                continue
            if name not in ctx and absent is not None and name not in absent:
                unknown.append(f"{operator} {key}: the request's own value of {key} decides it")
                continue
            if name in ctx.multivalued and prefix is None and base != "Null":
                # IAM: "multivalued context keys require a condition set operator"; without one, undefined.
                unknown.append(f"{operator} {key}: {key} is multivalued, and IAM needs ForAnyValue or ForAllValues")
                continue
            if not key_matches(prefix, base, if_exists, wanted, ctx.get(name)):
                return False, []
    return (None, unknown) if unknown else (True, [])


def action_matches(stmt: dict[str, Any], action: str) -> Tri:
    """Action/NotAction: names compare case-insensitively, with wildcards."""
    if "Action" in stmt:
        return any(glob_match(str(p), action, ignore_case=True) for p in as_list(stmt["Action"]))
    if "NotAction" in stmt:
        return not any(glob_match(str(p), action, ignore_case=True) for p in as_list(stmt["NotAction"]))
    return None


def resource_matches(stmt: dict[str, Any], resource: str) -> Tri:
    """Resource/NotResource: ARNs compare case-sensitively, with wildcards."""
    if "Resource" in stmt:
        return any(glob_match(str(p), resource) for p in as_list(stmt["Resource"]))
    if "NotResource" in stmt:
        return not any(glob_match(str(p), resource) for p in as_list(stmt["NotResource"]))
    return None


def context_of(base: Mapping[str, object], extra: Mapping[str, object] | None) -> Context:
    """Lower-cased keys (IAM key names are case-insensitive); a None value removes a key."""
    ctx = Context()
    for key, value in [*base.items(), *(extra or {}).items()]:
        name = key.lower()
        ctx.pop(name, None)
        ctx.multivalued.discard(name)
        if value is not None:
            ctx[name] = as_strings(value)
            if isinstance(value, (list, tuple)):
                ctx.multivalued.add(name)
    return ctx
