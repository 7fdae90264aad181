"""EventBridge event pattern matching, for checking an event against the template's rule.

moto's `TestEventPattern` returns no result (DESIGN 5), so the emulator matches the
rule's pattern itself. Supported: exact values, nested fields, `prefix`, `suffix`,
`anything-but`, `exists`, `numeric`, `equals-ignore-case`.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """True when `event` satisfies every field of `pattern` (EventBridge semantics)."""
    for key, expected in pattern.items():
        actual = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if not _field_matches(expected, actual):
                return False
        else:
            raise ValueError(f"pattern field {key!r} must be an object or a list")
    return True


def _field_matches(rules: list[Any], actual: Any) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    return any(_rule_matches(rule, value, actual) for rule in rules for value in values) or (
        not values and any(isinstance(r, dict) and r.get("exists") is False for r in rules)
    )


def _rule_matches(rule: Any, value: Any, whole: Any) -> bool:
    if not isinstance(rule, dict):
        # JSON true is not the number 1, though Python's bool is an int.
        return value is not _MISSING and type(value) is type(rule) and value == rule
    ((kind, arg),) = rule.items()
    if kind == "exists":
        return (whole is not _MISSING) is bool(arg)
    if value is _MISSING:
        return False
    if kind in ("prefix", "suffix"):
        if not isinstance(value, str):
            return False
        text, ignore_case = _text(arg)
        subject = value.lower() if ignore_case else value
        return subject.startswith(text) if kind == "prefix" else subject.endswith(text)
    if kind == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(arg).lower()
    if kind == "anything-but":
        excluded = arg if isinstance(arg, list) else [arg]
        if excluded and isinstance(excluded[0], dict):
            return not _rule_matches(excluded[0], value, whole)
        return value not in excluded
    if kind == "numeric":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _numeric(arg, value)
    raise ValueError(f"unsupported pattern operator {kind!r}")


def _text(arg: Any) -> tuple[str, bool]:
    """The prefix/suffix text, lower-cased when given as {"equals-ignore-case": ...}."""
    if isinstance(arg, dict):
        return str(arg.get("equals-ignore-case", "")).lower(), True
    return str(arg), False


def _numeric(conditions: list[Any], value: float) -> bool:
    checks = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](value, bound) for op, bound in pairs)
