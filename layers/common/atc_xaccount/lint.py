"""Policy lint before every write: errors block our own statements, warnings report others'.

We must never fail a cluster because of a statement someone else owns, so findings in
foreign statements are warnings; findings in statements with our Sids are errors.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any, Literal

from atc_xaccount.arns import is_valid_account_id, split_arn
from atc_xaccount.assume_policy import OWNED_SID
from atc_xaccount.documents import as_list, statements
from atc_xaccount.errors import PolicyLintFailed

Severity = Literal["error", "warning"]
_SID_RE = re.compile(r"[A-Za-z0-9]*")
# Parliament findings about the whole document that make it unwritable.
_DOCUMENT_ERRORS = frozenset({"EXCEPTION", "MALFORMED_JSON", "MALFORMED", "INVALID_VERSION"})
_EXTERNAL_ID_OPERATORS = frozenset({"stringequals", "stringlike", "stringequalsignorecase"})


@dataclass(frozen=True)
class Finding:
    """One lint result; `owned` says whether it sits in a statement this project manages."""

    code: str
    severity: Severity
    message: str
    sid: str | None
    owned: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for change records and PolicyLintFailed."""
        return asdict(self)


def _severity(owned: bool) -> Severity:
    return "error" if owned else "warning"


def _sid_of(stmt: dict[str, Any]) -> str | None:
    sid = stmt.get("Sid")
    return sid if isinstance(sid, str) else None


def _duplicate_sids(doc: dict[str, Any], owned_sids: Collection[str]) -> list[Finding]:
    counts = Counter(s for s in (_sid_of(st) for st in statements(doc)) if s is not None)
    return [
        Finding("DUPLICATE_SID", _severity(sid in owned_sids), f"Sid {sid} is used {n} times", sid, sid in owned_sids)
        for sid, n in counts.items()
        if n > 1
    ]


def _describe(titles: dict[str, Any], finding: Any) -> str:
    """One readable line from a parliament finding: title, detail, offending string."""
    title = str(titles.get(finding.issue, {}).get("title", finding.issue)).strip().rstrip(".")
    text = str(finding.detail).strip() if finding.detail else ""
    where = finding.location.get("string") if isinstance(finding.location, dict) else None
    parts = [] if text.lower().startswith(title.lower()) else [title]
    if text:
        parts.append(text)
    if where and str(where) not in text:
        parts.append(str(where))
    return ": ".join(parts)


def lint_identity_policy(doc: dict[str, Any], owned_sids: Collection[str] | None = None) -> list[Finding]:
    """Parliament's checks; `owned_sids` defaults to the assume policy's Sid.

    Parliament is imported here, not at module level: it is slow to import and most
    Lambda invocations never lint.
    """
    from parliament import analyze_policy_string
    from parliament import config as titles

    owned = {OWNED_SID} if owned_sids is None else set(owned_sids)
    policy = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True)
    findings: list[Finding] = []
    in_statements = {id(f) for stmt in policy.statements for f in stmt.findings}
    for finding in policy.findings:
        # Statement findings are added below; duplicates by _duplicate_sids, which knows owners.
        if id(finding) in in_statements or finding.issue == "DUPLICATE_SID":
            continue
        severity: Severity = "error" if finding.issue in _DOCUMENT_ERRORS else "warning"
        findings.append(Finding(finding.issue, severity, _describe(titles, finding), None, False))
    for stmt in policy.statements:
        sid = stmt.sid if isinstance(stmt.sid, str) else None
        is_owned = sid is not None and sid in owned
        findings.extend(
            Finding(f.issue, _severity(is_owned), _describe(titles, f), sid, is_owned) for f in stmt.findings
        )
    return findings + _duplicate_sids(doc, owned)


def _has_external_id_condition(stmt: dict[str, Any]) -> bool:
    condition = stmt.get("Condition")
    if not isinstance(condition, dict):
        return False
    # ...IfExists variants are not in the set: they let a request without an ID through.
    return any(
        str(operator).lower() in _EXTERNAL_ID_OPERATORS
        and isinstance(block, dict)
        and any(str(k).lower() == "sts:externalid" for k in block)
        for operator, block in condition.items()
    )


def _principal_accounts(principal: object) -> list[str | None]:
    """Account of each AWS principal entry; '*' for wildcard, None when not resolvable."""
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    accounts: list[str | None] = []
    for entry in as_list(principal.get("AWS")):
        if entry == "*" or is_valid_account_id(entry):
            accounts.append(entry)
            continue
        try:
            account = split_arn(str(entry))[3]
        except ValueError:
            account = ""
        accounts.append(account if is_valid_account_id(account) else None)
    return accounts


def _lint_trust_statement(
    index: int, stmt: dict[str, Any], owned_sids: Collection[str], role_account: str
) -> list[Finding]:
    sid = _sid_of(stmt)
    owned = sid is not None and sid in owned_sids
    label = f"statement {sid or f'#{index}'}"
    problems: list[tuple[str, str]] = []
    if sid is not None and _SID_RE.fullmatch(sid) is None:
        problems.append(("INVALID_SID", f"Sid {sid!r} may only contain A-Z a-z 0-9"))
    if stmt.get("Effect") == "Allow":
        accounts = _principal_accounts(stmt.get("Principal"))
        if "Principal" not in stmt:
            problems.append(("MISSING_PRINCIPAL", f"{label} has no Principal"))
        if "*" in accounts and not stmt.get("Condition"):
            problems.append(("WILDCARD_PRINCIPAL", f"{label} lets any AWS principal assume the role unconditionally"))
        elif any(a not in (None, role_account) for a in accounts) and not _has_external_id_condition(stmt):
            problems.append(
                ("MISSING_EXTERNAL_ID", f"{label} lets another account assume the role without an sts:ExternalId")
            )
        if None in accounts:
            problems.append(
                (
                    "UNRESOLVED_PRINCIPAL",
                    f"{label} names a principal that is not an ARN or account (a unique ID means a deleted role)",
                )
            )
    return [Finding(code, _severity(owned), message, sid, owned) for code, message in problems]


def lint_trust_policy(doc: dict[str, Any], owned_sids: Collection[str], role_account: str) -> list[Finding]:
    """Our trust-policy rules: wildcard principals, cross-account grants without an external ID,
    unresolved principals, Sid characters and duplicates."""
    findings: list[Finding] = []
    for index, stmt in enumerate(statements(doc)):
        findings.extend(_lint_trust_statement(index, stmt, owned_sids, role_account))
    return findings + _duplicate_sids(doc, owned_sids)


def raise_on_errors(findings: list[Finding], policy_name: str, account: str) -> None:
    """Refuse to write a document with error findings; warnings pass through."""
    errors = [f.to_dict() for f in findings if f.severity == "error"]
    if errors:
        raise PolicyLintFailed(policy_name, account, errors)
