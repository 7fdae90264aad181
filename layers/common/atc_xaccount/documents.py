"""Helpers over IAM policy documents as plain dicts: normalise, compare, measure."""

from __future__ import annotations

import copy
import json
from typing import Any

POLICY_VERSION = "2012-10-17"
_LIST_FIELDS = ("Resource", "NotResource")
_ACTION_FIELDS = ("Action", "NotAction")
_PRINCIPAL_FIELDS = ("Principal", "NotPrincipal")


class StatementShapeError(ValueError):
    """A statement with one of our Sids whose shape is not what we write (pure-layer error).

    Steps turn it into `OwnedStatementModified` with the account and resource named.
    """

    def __init__(self, sid: str, differences: list[str]) -> None:
        super().__init__(f"statement {sid}: {'; '.join(differences)}")
        self.sid = sid
        self.differences = differences


def as_list(x: object) -> list[Any]:
    """IAM accepts a single value or a list almost everywhere; code wants lists."""
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def empty_policy() -> dict[str, Any]:
    """A fresh, statement-less document (new dict each call, safe to mutate)."""
    return {"Version": POLICY_VERSION, "Statement": []}


def statements(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The statements of `doc` as a new list; AWS allows `Statement` to be a single object.

    The dicts are the document's own, not copies: treat them as read-only.
    """
    if not doc:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def _scalar(value: Any) -> Any:
    """IAM stores condition values as strings: `true` and "true" mean the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _sorted_unique(values: list[Any]) -> list[Any]:
    unique = {json.dumps(v, sort_keys=True): v for v in values}
    return [unique[k] for k in sorted(unique)]


def _canonical_principal(principal: Any) -> Any:
    if principal == "*":
        return {"AWS": ["*"]}  # IAM documents "Principal": "*" as equal to {"AWS": "*"}
    if not isinstance(principal, dict):
        return copy.deepcopy(principal)
    return {k: _sorted_unique([_scalar(v) for v in as_list(vs)]) for k, vs in principal.items()}


def _canonical_condition(condition: Any) -> Any:
    """Operator and key names fold to lower case; differently-cased duplicates stay ANDed."""
    if not isinstance(condition, dict):
        return copy.deepcopy(condition)
    result: dict[str, Any] = {}
    for operator, block in condition.items():
        op = str(operator).lower()
        if not isinstance(block, dict):
            result.setdefault(op, {})["<invalid>"] = copy.deepcopy(block)
            continue
        target = result.setdefault(op, {})
        for key, values in block.items():
            name = str(key).lower()
            normal = _sorted_unique([_scalar(v) for v in as_list(values)])
            if name in target:
                # Same key twice under different spellings: AND of two OR-sets, keep both.
                previous = target[name]
                groups = previous["all_of"] if isinstance(previous, dict) else [previous]
                target[name] = {"all_of": _sorted_unique([*groups, normal])}
            else:
                target[name] = normal
    return result


def _canonical_statement(stmt: Any) -> Any:
    if not isinstance(stmt, dict):
        return copy.deepcopy(stmt)
    result: dict[str, Any] = {}
    for key, value in stmt.items():
        if key in _ACTION_FIELDS:
            # Action names are case-insensitive in IAM.
            result[key] = _sorted_unique([str(a).lower() for a in as_list(value)])
        elif key in _LIST_FIELDS:
            result[key] = _sorted_unique(as_list(value))
        elif key in _PRINCIPAL_FIELDS:
            result[key] = _canonical_principal(value)
        elif key == "Condition":
            result[key] = _canonical_condition(value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """A normalised deep copy for comparison only (never write it back).

    Statement order carries no meaning in IAM, so statements are sorted by their JSON.
    """
    result = {k: copy.deepcopy(v) for k, v in doc.items() if k != "Statement"}
    if "Statement" in doc:
        stmts = [_canonical_statement(s) for s in as_list(doc["Statement"])]
        result["Statement"] = sorted(stmts, key=lambda s: json.dumps(s, sort_keys=True))
    return result


def same_document(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Semantic equality, so a string-vs-list or reordering difference causes no write."""
    if a is None or b is None:
        return a is b
    return canonical(a) == canonical(b)


def non_whitespace_size(doc: dict[str, Any]) -> int:
    """How IAM measures policy size quotas (trust: ACLSizePerRole, managed: 6,144)."""
    return sum(1 for c in json.dumps(doc) if not c.isspace())


def replace_sid_statements(doc: dict[str, Any], sid: str, statement: dict[str, Any] | None) -> dict[str, Any]:
    """Upsert keyed by Sid: all statements with `sid` become `statement` (None removes them).

    The replacement takes the first match's position, or goes last when there was none;
    every other statement is deep-copied unchanged and keeps its place.
    """
    result = copy.deepcopy(doc)
    kept: list[Any] = []
    placed = False
    for stmt in as_list(result.get("Statement")):
        if isinstance(stmt, dict) and stmt.get("Sid") == sid:
            if not placed and statement is not None:
                kept.append(copy.deepcopy(statement))
            placed = True
            continue
        kept.append(stmt)
    if not placed and statement is not None:
        kept.append(copy.deepcopy(statement))
    result["Statement"] = kept
    return result


def same_statement(a: Any, b: Any) -> bool:
    """Semantic equality of two statements (the comparison `same_document` makes per statement)."""
    return bool(_canonical_statement(a) == _canonical_statement(b))


def statements_with_sid(doc: dict[str, Any] | None, sid: str) -> list[dict[str, Any]]:
    return [s for s in statements(doc) if s.get("Sid") == sid]


def single_action(stmt: dict[str, Any], action: str) -> bool:
    """`Action` is exactly `action` (string or one-element list; IAM action names ignore case)."""
    actions = as_list(stmt.get("Action"))
    return len(actions) == 1 and isinstance(actions[0], str) and actions[0].lower() == action.lower()
