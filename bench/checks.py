"""After an onboarding (ours or the baseline's): does access work, and what was destroyed?

Uses the project's own evaluator (`atc_xaccount.evaluate`), because moto evaluates
neither trust policies across accounts nor identity policies without IAM authorization.
"""

from __future__ import annotations

import json
from typing import Any

from atc_xaccount.documents import as_list, canonical, statements
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust


def _canonical_statement(stmt: dict[str, Any]) -> str:
    return json.dumps(canonical({"Statement": [stmt]}), sort_keys=True)


def describe_statement(stmt: dict[str, Any], index: int) -> str:
    """A readable label: the Sid, else who the statement lets in."""
    if stmt.get("Sid"):
        return str(stmt["Sid"])
    principal = stmt.get("Principal")
    if isinstance(principal, dict):
        who = [str(v) for values in principal.values() for v in as_list(values)]
        return f"#{index} ({', '.join(who)})"
    return f"#{index}"


def lost_statements(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Statements of `before` that no longer exist, semantically, in `after`."""
    kept = {_canonical_statement(s) for s in statements(after)}
    return [describe_statement(s, i) for i, s in enumerate(statements(before)) if _canonical_statement(s) not in kept]


def external_id_grants(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(principal ARN, external ID) pairs that Allow statements grant, for re-checking."""
    found: list[tuple[str, str]] = []
    for stmt in statements(doc):
        principal = stmt.get("Principal")
        if stmt.get("Effect") != "Allow" or not isinstance(principal, dict):
            continue
        condition = stmt.get("Condition") or {}
        ids = [
            value
            for operator, block in condition.items()
            if str(operator).lower() == "stringequals" and isinstance(block, dict)
            for key, values in block.items()
            if str(key).lower() == "sts:externalid"
            for value in as_list(values)
        ]
        for arn in as_list(principal.get("AWS")):
            found.extend((str(arn), str(i)) for i in ids)
    return found


def service_principals(doc: dict[str, Any]) -> set[str]:
    return {
        str(s)
        for stmt in statements(doc)
        if stmt.get("Effect") == "Allow" and isinstance(stmt.get("Principal"), dict)
        for s in as_list(stmt["Principal"].get("Service"))
    }


def access_report(
    *,
    before_trust: dict[str, Any],
    after_trust: dict[str, Any],
    identity_docs: list[dict[str, Any]],
    node_role_arn: str,
    access_role_arn: str,
    external_id: str | None,
) -> dict[str, Any]:
    """Would the node role get in with its external ID, and did everyone else keep access?"""
    trust = evaluate_trust(after_trust, node_role_arn, external_id)
    identity = evaluate_identity(identity_docs, "sts:AssumeRole", access_role_arn)
    others_broken = [
        arn  # never the external ID: it is a shared secret
        for arn, ext_id in external_id_grants(before_trust)
        if arn != node_role_arn
        and evaluate_trust(before_trust, arn, ext_id).allowed
        and not evaluate_trust(after_trust, arn, ext_id).allowed
    ]
    lost = lost_statements(before_trust, after_trust)
    return {
        "access_works": trust.allowed and identity.allowed,
        "trust_admits_node_role": trust.allowed,
        "identity_allows_assume": identity.allowed,
        "identity_reason": identity.reason,
        "statements_lost": len(lost),
        "lost": lost,
        "services_lost": sorted(service_principals(before_trust) - service_principals(after_trust)),
        "other_grants_broken": others_broken,
    }
