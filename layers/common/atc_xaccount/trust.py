"""Grants in the access role's trust policy: one statement per principal, keyed by Sid.

Only statements whose Sid `grant_sid` produced are ours; everything else (the EC2
statement, other partners, Deny statements) is preserved exactly and in order.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from atc_xaccount.arns import account_of_arn, split_arn
from atc_xaccount.documents import as_list, replace_sid_statements, same_document, statements
from atc_xaccount.extid import is_valid_external_id

OWNED_SID_PREFIX = "AtcXaccount"
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


def _statement_external_ids(stmt: dict[str, Any]) -> list[str]:
    """IDs under StringEquals sts:ExternalId, operator and key matched case-insensitively."""
    found: list[str] = []
    condition = stmt.get("Condition")
    if not isinstance(condition, dict):
        return found
    for operator, block in condition.items():
        if str(operator).lower() != "stringequals" or not isinstance(block, dict):
            continue
        for key, values in block.items():
            if str(key).lower() == "sts:externalid":
                found.extend(v for v in as_list(values) if isinstance(v, str))
    return found


def grant_external_ids(doc: dict[str, Any] | None, principal_arn: str) -> list[str]:
    """External IDs our statement grants to `principal_arn`, sorted and unique."""
    sid = grant_sid(principal_arn)
    found: set[str] = set()
    for stmt in statements(doc):
        if stmt.get("Sid") == sid:
            found.update(_statement_external_ids(stmt))
    return sorted(found)


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
    """Rewrite our statement for `principal_arn` (repairing edits); no IDs removes it."""
    stmt = grant_statement(principal_arn, ids) if ids else None
    return replace_sid_statements(doc, grant_sid(principal_arn), stmt)


def merge_trust_grant(doc: dict[str, Any], principal_arn: str, external_id: str) -> tuple[dict[str, Any], bool]:
    """Let `principal_arn` assume the role with `external_id`, keeping every other grant.

    Returns `(document, changed)`; `changed` comes from comparing canonical documents.
    """
    _check_principal(principal_arn)
    _check_external_id(external_id)
    ids = grant_external_ids(doc, principal_arn)
    merged = _with_ids(doc, principal_arn, [*ids, external_id])
    if same_document(merged, doc):
        return copy.deepcopy(doc), False
    return merged, True


def remove_trust_grant(doc: dict[str, Any], principal_arn: str, external_id: str) -> tuple[dict[str, Any], bool]:
    """Withdraw one external ID; our statement goes when no ID is left."""
    _check_principal(principal_arn)
    _check_external_id(external_id)
    ids = grant_external_ids(doc, principal_arn)
    if external_id not in ids:
        return copy.deepcopy(doc), False
    reduced = _with_ids(doc, principal_arn, [i for i in ids if i != external_id])
    if same_document(reduced, doc):
        return copy.deepcopy(doc), False
    return reduced, True
