"""The managed policy `atc-s3-assume-role`: which access roles `atc-node` may assume.

The statement with our Sid is ours only in the exact shape `_owned_statement` writes:
`Allow`, exactly `sts:AssumeRole`, role ARNs (no wildcard) as `Resource`, nothing else.
With our Sid in any other shape (a Deny, a condition, another action) it was edited by
hand: it is never rewritten, and merging or removing raises `StatementShapeError`.
Every other statement is kept exactly as found.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from atc_xaccount.arns import is_role_arn
from atc_xaccount.documents import (
    POLICY_VERSION,
    StatementShapeError,
    as_list,
    replace_sid_statements,
    same_document,
    single_action,
    statements,
    statements_with_sid,
)

OWNED_SID = "AtcXaccountAssumeAccessRoles"


def _owned_statement(resources: list[str]) -> dict[str, Any]:
    return {
        "Sid": OWNED_SID,
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": sorted(set(resources)),
    }


_OWNED_KEYS = {"Sid", "Effect", "Action", "Resource"}


def statement_problems(stmt: dict[str, Any]) -> list[str]:
    """How `stmt` differs from the statement we write (empty: it is ours)."""
    problems: list[str] = []
    extra = sorted(set(stmt) - _OWNED_KEYS)
    if extra:
        problems.append(f"it has {', '.join(extra)}")
    if stmt.get("Effect") != "Allow":
        problems.append(f'Effect is {json.dumps(stmt.get("Effect"))}, not "Allow"')
    if not single_action(stmt, "sts:AssumeRole"):
        problems.append(f'Action is {json.dumps(stmt.get("Action"))}, not "sts:AssumeRole"')
    resources = as_list(stmt.get("Resource"))
    odd = [r for r in resources if not (isinstance(r, str) and is_role_arn(r) and not set(r) & {"*", "?"})]
    if not resources or odd:
        problems.append(f"Resource holds {json.dumps(odd or resources)}, not only role ARNs")
    return problems


def _owned(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    found = statements_with_sid(doc, OWNED_SID)
    if len(found) > 1:
        raise StatementShapeError(OWNED_SID, [f"the Sid appears {len(found)} times"])
    if not found:
        return None
    problems = statement_problems(found[0])
    if problems:
        raise StatementShapeError(OWNED_SID, problems)
    return found[0]


def ownership_problems(doc: dict[str, Any] | None) -> list[str]:
    """Why the statement with our Sid is not ours (empty: ours, or absent)."""
    try:
        _owned(doc)
    except StatementShapeError as exc:
        return exc.differences
    return []


def owned_resources(doc: dict[str, Any] | None) -> list[str]:
    """Role ARNs granted by our statement, sorted; a statement not of our shape grants none here."""
    try:
        stmt = _owned(doc)
    except StatementShapeError:
        return []
    return sorted({r for r in as_list(stmt.get("Resource")) if isinstance(r, str)}) if stmt else []


def _rebuild(doc: dict[str, Any], resources: list[str]) -> dict[str, Any]:
    """Our statement with exactly `resources` (its shape proven first); none removes it."""
    _owned(doc)
    return replace_sid_statements(doc, OWNED_SID, _owned_statement(resources) if resources else None)


def _check_arn(access_role_arn: str) -> None:
    if not is_role_arn(access_role_arn):
        raise ValueError(f"not an IAM role ARN: {access_role_arn!r}")


def merge_assume_policy(doc: dict[str, Any] | None, access_role_arn: str) -> tuple[dict[str, Any], bool]:
    """Allow sts:AssumeRole on `access_role_arn`; `doc=None` means the policy does not exist.

    Returns `(document, changed)`; when nothing needs doing the document equals the input.
    """
    _check_arn(access_role_arn)
    if doc is None:
        created = {"Version": POLICY_VERSION, "Statement": [_owned_statement([access_role_arn])]}
        return created, True
    _owned(doc)
    merged = _rebuild(doc, [*owned_resources(doc), access_role_arn])
    if same_document(merged, doc):
        return copy.deepcopy(doc), False
    return merged, True


def remove_assume_policy_resource(doc: dict[str, Any], access_role_arn: str) -> tuple[dict[str, Any], bool]:
    """Drop `access_role_arn` from our statement; the statement goes when it grants nothing."""
    _check_arn(access_role_arn)
    _owned(doc)
    current = owned_resources(doc)
    if access_role_arn not in current:
        return copy.deepcopy(doc), False
    reduced = _rebuild(doc, [r for r in current if r != access_role_arn])
    if same_document(reduced, doc):
        return copy.deepcopy(doc), False
    return reduced, True


def is_effectively_empty(doc: dict[str, Any] | None) -> bool:
    """No statements left: the caller detaches and deletes the policy rather than keep it."""
    return not statements(doc)
