"""Policy lint before every write: errors block our own statements, warnings report others'.

We must never fail a cluster because of a statement someone else owns, so findings in
foreign statements are warnings; findings in statements with our Sids are errors.

Our own rules, pure and fast: parliament (a dev and CI tool here, tests/deploy/) cost
~540 ms of a Lambda cold start to import, and in AWS, IAM Access Analyzer's
`ValidatePolicy` (analyzer.py) checks actions and resources against IAM's own catalogue
before the same writes. The rule codes are parliament's where it has the rule.
"""

from __future__ import annotations

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
_EXTERNAL_ID_OPERATORS = frozenset({"stringequals", "stringlike", "stringequalsignorecase"})
_POLICY_ELEMENTS = frozenset({"Version", "Statement", "Id"})
_STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
#: `service:Action`, wildcards allowed (IAM's catalogue is Access Analyzer's job, not ours).
_ACTION_RE = re.compile(r"\*|[a-z0-9-]+:[A-Za-z0-9*?]+")
#: Six colon-separated parts, the last one free: arn:partition:service:region:account:resource.
_ARN_RE = re.compile(r"arn:[a-z*?-]+:[a-z0-9*?-]+:[^:]*:[^:]*:.+")
#: Actions whose resource is an IAM role (the assume policy's only statement).
_ROLE_ACTIONS = re.compile(r"sts:(assumerole\w*|tagsession|setsourceidentity)", re.IGNORECASE)
_ROLE_ARN_RE = re.compile(r"arn:[a-z*?-]+:iam::[0-9*?]*:role/.+")


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


def _document_findings(doc: Any) -> list[Finding]:
    """Problems with the document as a whole: unwritable ones are errors whoever owns what."""
    if not isinstance(doc, dict):
        return [Finding("MALFORMED", "error", "The policy is not a JSON object", None, False)]
    problems: list[tuple[str, Severity, str]] = [
        ("MALFORMED", "error", f"Policy contains an unknown element {key!r}")
        for key in doc
        if key not in _POLICY_ELEMENTS
    ]
    if "Statement" not in doc:
        problems.append(("MALFORMED", "error", "Policy does not contain a Statement element"))
    elif any(not isinstance(stmt, dict) for stmt in as_list(doc["Statement"])):
        problems.append(("MALFORMED", "error", "Every statement must be a JSON object"))
    version = doc.get("Version")
    if version is None:
        problems.append(("NO_VERSION", "warning", "Policy has no Version: policy variables do not work"))
    elif version not in ("2012-10-17", "2008-10-17"):
        problems.append(("INVALID_VERSION", "error", f"Unknown Version {version!r}: it must be 2012-10-17"))
    elif version != "2012-10-17":
        problems.append(("OLD_VERSION", "warning", f"Version {version}: policy variables do not work"))
    return [Finding(code, severity, message, None, False) for code, severity, message in problems]


def _one_of(stmt: dict[str, Any], element: str, label: str) -> list[tuple[str, str]]:
    """Exactly one of `element` and `NotElement`."""
    present = [key for key in (element, f"Not{element}") if key in stmt]
    if len(present) == 1:
        return []
    which = "both" if present else "neither"
    return [("MALFORMED", f"{label} contains {which} {element} {'and' if present else 'nor'} Not{element}")]


def _resource_problems(stmt: dict[str, Any], label: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    resources = as_list(stmt.get("Resource", stmt.get("NotResource")))
    for resource in resources:
        if resource != "*" and (not isinstance(resource, str) or _ARN_RE.fullmatch(resource) is None):
            problems.append(
                ("INVALID_ARN", f"{label}: not an ARN (arn:partition:service:region:account:resource): {resource}")
            )
    actions = as_list(stmt.get("Action"))
    if problems or "Resource" not in stmt or not actions:
        return problems
    if all(isinstance(a, str) and _ROLE_ACTIONS.fullmatch(a) for a in actions):
        problems.extend(
            ("RESOURCE_MISMATCH", f"{label}: {', '.join(actions)} applies to IAM roles, not to {resource}")
            for resource in resources
            if resource != "*" and _ROLE_ARN_RE.fullmatch(resource) is None
        )
    return problems


def _lint_identity_statement(index: int, stmt: dict[str, Any], owned_sids: Collection[str]) -> list[Finding]:
    sid = _sid_of(stmt)
    owned = sid is not None and sid in owned_sids
    label = f"statement {sid or f'#{index}'}"
    problems = [
        ("MALFORMED", f"{label} contains an unknown element {k!r}") for k in stmt if k not in _STATEMENT_ELEMENTS
    ]
    if sid is not None and _SID_RE.fullmatch(sid) is None:
        problems.append(("INVALID_SID", f"Sid {sid!r} may only contain A-Z a-z 0-9"))
    if stmt.get("Effect") not in ("Allow", "Deny"):
        problems.append(("MALFORMED", f"{label}: Effect must be Allow or Deny, not {stmt.get('Effect')!r}"))
    problems += _one_of(stmt, "Action", label) + _one_of(stmt, "Resource", label)
    problems.extend(
        ("INVALID_ACTION", f"{label}: not an action (service:Action): {action}")
        for action in as_list(stmt.get("Action", stmt.get("NotAction")))
        if not isinstance(action, str) or _ACTION_RE.fullmatch(action) is None
    )
    problems += _resource_problems(stmt, label)
    return [Finding(code, _severity(owned), message, sid, owned) for code, message in problems]


def lint_identity_policy(doc: dict[str, Any], owned_sids: Collection[str] | None = None) -> list[Finding]:
    """Grammar of an identity policy; `owned_sids` defaults to the assume policy's Sid."""
    owned = {OWNED_SID} if owned_sids is None else set(owned_sids)
    findings = _document_findings(doc)
    if any(f.severity == "error" for f in findings):
        return findings
    for index, stmt in enumerate(statements(doc)):
        findings.extend(_lint_identity_statement(index, stmt, owned))
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
