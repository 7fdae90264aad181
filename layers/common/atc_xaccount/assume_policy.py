"""The managed policy `atc-s3-assume-role`: which access roles `atc-node` may assume.

Only the statement with our Sid is ours; every other statement is kept exactly as found.
"""

from __future__ import annotations

import copy
from typing import Any

from atc_xaccount.arns import is_role_arn
from atc_xaccount.documents import (
    POLICY_VERSION,
    as_list,
    replace_sid_statements,
    same_document,
    statements,
)

OWNED_SID = "AtcXaccountAssumeAccessRoles"


def _owned_statement(resources: list[str]) -> dict[str, Any]:
    return {
        "Sid": OWNED_SID,
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": sorted(set(resources)),
    }


def owned_resources(doc: dict[str, Any] | None) -> list[str]:
    """Role ARNs granted by our statement(s), sorted; foreign statements are not counted."""
    found: set[str] = set()
    for stmt in statements(doc):
        if stmt.get("Sid") == OWNED_SID:
            found.update(r for r in as_list(stmt.get("Resource")) if isinstance(r, str))
    return sorted(found)


def _rebuild(doc: dict[str, Any], resources: list[str]) -> dict[str, Any]:
    """One canonical owned statement (repairing hand edits); no resources removes it."""
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
    merged = _rebuild(doc, [*owned_resources(doc), access_role_arn])
    if same_document(merged, doc):
        return copy.deepcopy(doc), False
    return merged, True


def remove_assume_policy_resource(doc: dict[str, Any], access_role_arn: str) -> tuple[dict[str, Any], bool]:
    """Drop `access_role_arn` from our statement; the statement goes when it grants nothing."""
    _check_arn(access_role_arn)
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
