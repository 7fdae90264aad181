"""Grants in the access role's trust policy: one statement per principal, keyed by Sid.

A statement is ours only if its whole shape is what `grant_statement` writes: our Sid,
`Allow`, exactly the node role as principal, exactly `sts:AssumeRole`, and a condition
holding nothing but `StringEquals sts:ExternalId`. A statement that carries our Sid in
any other shape (a Deny, another principal, an extra condition) was edited by hand: it is
never rewritten, and merging or removing raises `StatementShapeError`. Everything else
(the EC2 statement, other partners, Deny statements) is preserved exactly and in order.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

from atc_xaccount.arns import account_of_arn, split_arn
from atc_xaccount.documents import (
    StatementShapeError,
    as_list,
    replace_sid_statements,
    same_document,
    single_action,
    statements,
    statements_with_sid,
)
from atc_xaccount.extid import is_valid_external_id

OWNED_SID_PREFIX = "AtcXaccount"
#: The statement that stands in when our grant was a trust policy's only statement: IAM
#: refuses `Statement: []`, and this admits nobody. It goes when the next grant is added.
NOBODY_SID = f"{OWNED_SID_PREFIX}AdmitsNobody"
_GRANT_KEYS = {"Sid", "Effect", "Principal", "Action", "Condition"}
_MAX_SID_NAME = 100 - len(OWNED_SID_PREFIX) - 12 - 8
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")


def _check_principal(principal_arn: str) -> None:
    if not isinstance(principal_arn, str) or split_arn(principal_arn)[1] != "iam":
        raise ValueError(f"not an IAM principal ARN: {principal_arn!r}")
    account_of_arn(principal_arn)


def _check_external_id(external_id: str) -> None:
    if not is_valid_external_id(external_id):
        # Never echo the value: it is a shared secret.
        raise ValueError("external ID must be 2-1224 characters of A-Z a-z 0-9 + = , . @ : / -")


def grant_sid(principal_arn: str) -> str:
    """Deterministic Sid (only [A-Za-z0-9], <= 100 chars) naming the grantee.

    The hash of the lower-cased ARN keeps Sids distinct when the name loses characters.
    """
    _check_principal(principal_arn)
    account = account_of_arn(principal_arn)
    resource = split_arn(principal_arn)[4]
    name = resource[len("role/") :] if resource.startswith("role/") else resource
    alnum = _NON_ALNUM.sub("", name)[:_MAX_SID_NAME]
    digest = hashlib.sha256(principal_arn.lower().encode()).hexdigest()[:8]
    return f"{OWNED_SID_PREFIX}{account}{alnum}{digest}"


def owned_sids(doc: dict[str, Any] | None) -> set[str]:
    """Sids of the grant statements this project manages, for lint and audit."""
    return {
        s["Sid"] for s in statements(doc) if isinstance(s.get("Sid"), str) and s["Sid"].startswith(OWNED_SID_PREFIX)
    }


def admits_nobody_statement() -> dict[str, Any]:
    """Deny everyone `sts:AssumeRole`: the only statement of a trust policy we emptied."""
    return {"Sid": NOBODY_SID, "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}


def is_admits_nobody(stmt: Any) -> bool:
    """Our placeholder, in exactly the shape we write it (a look-alike is somebody's Deny)."""
    return isinstance(stmt, dict) and json.dumps(stmt, sort_keys=True) == json.dumps(
        admits_nobody_statement(), sort_keys=True
    )


def _condition_ids(condition: Any) -> list[str] | None:
    """The IDs of a condition that is exactly `StringEquals sts:ExternalId`, else None."""
    if not isinstance(condition, dict) or len(condition) != 1:
        return None
    operator, block = next(iter(condition.items()))
    if str(operator).lower() != "stringequals" or not isinstance(block, dict) or len(block) != 1:
        return None
    key, values = next(iter(block.items()))
    ids = as_list(values)
    if str(key).lower() != "sts:externalid" or not ids or not all(isinstance(v, str) for v in ids):
        return None
    return [str(v) for v in ids]


def grant_shape_problems(stmt: dict[str, Any], principal_arn: str) -> list[str]:
    """How `stmt` differs from the grant we write for `principal_arn` (empty: it is ours)."""
    problems: list[str] = []
    extra = sorted(set(stmt) - _GRANT_KEYS)
    if extra:
        problems.append(f"it has {', '.join(extra)}")
    if stmt.get("Effect") != "Allow":
        problems.append(f'Effect is {json.dumps(stmt.get("Effect"))}, not "Allow"')
    principal = stmt.get("Principal")
    entries = as_list(principal.get("AWS")) if isinstance(principal, dict) and set(principal) == {"AWS"} else None
    if entries is None or len(entries) != 1 or str(entries[0]).lower() != principal_arn.lower():
        shown = json.dumps(principal)
        if entries and len(entries) == 1 and re.fullmatch(r"AROA[A-Z0-9]+", str(entries[0])):
            problems.append(f"Principal is the unique ID {entries[0]}: the node role was deleted and recreated")
        else:
            problems.append(f'Principal is {shown}, not {{"AWS": "{principal_arn}"}}')
    if not single_action(stmt, "sts:AssumeRole"):
        problems.append(f'Action is {json.dumps(stmt.get("Action"))}, not "sts:AssumeRole"')
    if _condition_ids(stmt.get("Condition")) is None:
        problems.append(
            f"Condition is {_condition_outline(stmt.get('Condition'))}, not only StringEquals sts:ExternalId"
        )
    return problems


def _condition_outline(condition: Any) -> str:
    """Operators and keys of a condition, without its values (they may be external IDs)."""
    if not isinstance(condition, dict):
        return json.dumps(condition) if condition is None else "not an object"
    parts = [
        f"{op} {', '.join(map(str, block)) if isinstance(block, dict) else '?'}" for op, block in condition.items()
    ]
    return "{" + "; ".join(parts) + "}"


def _owned_grant(doc: dict[str, Any] | None, principal_arn: str) -> dict[str, Any] | None:
    """Our grant statement for `principal_arn`, proven by shape; raises when the Sid is misused."""
    sid = grant_sid(principal_arn)
    found = statements_with_sid(doc, sid)
    if len(found) > 1:
        raise StatementShapeError(sid, [f"the Sid appears {len(found)} times"])
    if not found:
        return None
    problems = grant_shape_problems(found[0], principal_arn)
    if problems:
        raise StatementShapeError(sid, problems)
    return found[0]


def grant_problems(doc: dict[str, Any] | None, principal_arn: str) -> list[str]:
    """Why the statement with our Sid is not ours (empty: ours, or absent) — for preflight and audit."""
    try:
        _owned_grant(doc, principal_arn)
    except StatementShapeError as exc:
        return exc.differences
    return []


def grant_external_ids(doc: dict[str, Any] | None, principal_arn: str) -> list[str]:
    """External IDs our statement grants to `principal_arn`, sorted and unique.

    A statement with our Sid but another shape is not ours: it grants us nothing here.
    """
    try:
        stmt = _owned_grant(doc, principal_arn)
    except StatementShapeError:
        return []
    return sorted(set(_condition_ids(stmt.get("Condition")) or [])) if stmt else []


def grant_statement(principal_arn: str, external_ids: list[str]) -> dict[str, Any]:
    """The exact statement we write: one string for one ID, a sorted list for several."""
    ids = sorted(set(external_ids))
    return {
        "Sid": grant_sid(principal_arn),
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": ids[0] if len(ids) == 1 else ids}},
    }


def _with_ids(doc: dict[str, Any], principal_arn: str, ids: list[str]) -> dict[str, Any]:
    """Our statement for `principal_arn` with exactly `ids`; no IDs removes it.

    IAM refuses a trust policy without statements, so the last one removed leaves our
    admits-nobody placeholder; adding a grant drops the placeholder again.
    """
    stmt = grant_statement(principal_arn, ids) if ids else None
    result = replace_sid_statements(doc, grant_sid(principal_arn), stmt)
    kept = [s for s in as_list(result.get("Statement")) if not is_admits_nobody(s)]
    result["Statement"] = kept or [admits_nobody_statement()]
    return result


def merge_trust_grant(doc: dict[str, Any], principal_arn: str, external_id: str) -> tuple[dict[str, Any], bool]:
    """Let `principal_arn` assume the role with `external_id`, keeping every other statement.

    Returns `(document, changed)`; `changed` comes from comparing canonical documents.
    Raises `StatementShapeError` when a statement carries our Sid in another shape.
    """
    _check_principal(principal_arn)
    _check_external_id(external_id)
    _owned_grant(doc, principal_arn)
    ids = grant_external_ids(doc, principal_arn)
    merged = _with_ids(doc, principal_arn, [*ids, external_id])
    if same_document(merged, doc):
        return copy.deepcopy(doc), False
    return merged, True


def remove_trust_grant(doc: dict[str, Any], principal_arn: str, external_id: str) -> tuple[dict[str, Any], bool]:
    """Withdraw one external ID; our statement goes when no ID is left.

    Raises `StatementShapeError` when a statement carries our Sid in another shape: only
    IDs of a statement we wrote are ever removed.
    """
    _check_principal(principal_arn)
    _check_external_id(external_id)
    _owned_grant(doc, principal_arn)
    ids = grant_external_ids(doc, principal_arn)
    if external_id not in ids:
        return copy.deepcopy(doc), False
    reduced = _with_ids(doc, principal_arn, [i for i in ids if i != external_id])
    if same_document(reduced, doc):
        return copy.deepcopy(doc), False
    return reduced, True
