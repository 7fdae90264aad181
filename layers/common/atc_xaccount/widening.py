"""Never widen: what a new policy document grants, compared with the old one, before a write.

Two rules, both checked on the pure documents before any write (and again by each write
step), so a mistake in merge logic or an unexpected foreign shape is refused, not written:

1. Structure: every statement that is not ours stays, semantically unchanged, and every
   Deny of the old document (except our own admits-nobody placeholder) is still there.
2. Semantics, with the project's evaluator over a finite set of probes built from both
   documents (every principal, account, resource, action and external ID they mention,
   plus outsiders): the new document may admit only the pairs this change adds
   (`may_admit` / `may_allow`), and nothing explicitly denied before may stop being denied.

The probes are finite, so rule 2 is a check, not a proof; rule 1 is what makes it safe:
only our own statements, of a shape we control, may change at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from atc_xaccount.arns import is_valid_account_id, split_arn
from atc_xaccount.documents import as_list, same_statement, statements
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust

#: A (principal ARN, external ID or None) the trust policy may admit.
Pair = tuple[str, str | None]

_PROBE_ID = "atc-xaccount-probe-external-id"
_PROBE_ACCOUNT = "000000000000"
_PROBE_NAME = "atc-xaccount-probe"


def _filled(pattern: str) -> str:
    """A concrete value a wildcard pattern matches (`*` and `?` filled in)."""
    return pattern.replace("*", _PROBE_NAME).replace("?", "x")


def _partition(arns: Iterable[str]) -> str:
    for arn in arns:
        if arn.startswith("arn:"):
            return split_arn(arn)[0]
    return "aws"


def _principal_entries(doc: dict[str, Any] | None) -> list[str]:
    found: list[str] = []
    for stmt in statements(doc):
        for key in ("Principal", "NotPrincipal"):
            block = stmt.get(key)
            if block == "*":
                found.append("*")
            elif isinstance(block, dict):
                found.extend(str(e) for e in as_list(block.get("AWS")))
    return found


def _condition_values(doc: dict[str, Any] | None, key: str) -> list[str]:
    found: list[str] = []
    for stmt in statements(doc):
        condition = stmt.get("Condition")
        for block in condition.values() if isinstance(condition, dict) else []:
            for name, values in block.items() if isinstance(block, dict) else []:
                if str(name).lower() == key:
                    found.extend(_filled(str(v)) for v in as_list(values) if isinstance(v, (str, int)))
    return found


def _trust_principals(docs: list[dict[str, Any] | None], extra: Iterable[str]) -> list[str]:
    entries = [e for d in docs for e in _principal_entries(d)] + list(extra)
    partition = _partition(entries)
    principals = {f"arn:{partition}:iam::{_PROBE_ACCOUNT}:role/{_PROBE_NAME}"}
    for entry in entries:
        if entry == "*" or "*" in entry or "?" in entry:
            filled = _filled(entry)
            if filled.startswith("arn:") and len(filled.split(":", 5)) == 6:
                principals.add(filled)
        elif is_valid_account_id(entry):
            principals.update(
                {f"arn:{partition}:iam::{entry}:root", f"arn:{partition}:iam::{entry}:role/{_PROBE_NAME}"}
            )
        elif entry.startswith("arn:") and len(entry.split(":", 5)) == 6:
            principals.add(entry)
            account = entry.split(":", 5)[4]
            if is_valid_account_id(account):
                principals.add(f"arn:{partition}:iam::{account}:role/{_PROBE_NAME}")
    return sorted(principals)


def _decisions(probes: Iterable[Any], decide: Callable[[Any], tuple[bool, bool]]) -> tuple[set[Any], set[Any]]:
    allowed: set[Any] = set()
    denied: set[Any] = set()
    for probe in probes:
        is_allowed, is_denied = decide(probe)
        if is_allowed:
            allowed.add(probe)
        if is_denied:
            denied.add(probe)
    return allowed, denied


def _changed(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """A document of the statements that differ between the two (the only ones that can widen).

    Probes come from these: a pair admitted after but not before must be matched by an
    added Allow or have been matched by a removed Deny, so their principals, IDs,
    resources and actions, plus outsiders, are the probes that can tell.
    """
    old, new = statements(before), statements(after)
    differing = [s for s in old if not any(same_statement(s, o) for o in new)]
    differing += [s for s in new if not any(same_statement(s, o) for o in old)]
    return {"Statement": differing}


def _kept_structure(
    before: dict[str, Any] | None, after: dict[str, Any], ours: Callable[[dict[str, Any]], bool]
) -> list[str]:
    """Rule 1: foreign statements unchanged, Denies kept."""
    problems: list[str] = []
    new = statements(after)
    for index, stmt in enumerate(statements(before)):
        label = str(stmt.get("Sid") or f"#{index}")
        kept = any(same_statement(stmt, other) for other in new)
        if kept:
            continue
        if stmt.get("Effect") == "Deny" and not ours(stmt):
            problems.append(f"remove or change the Deny statement {label}")
        elif not ours(stmt):
            problems.append(f"change or remove the statement {label}, which this project does not own")
    return problems


def trust_violations(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    *,
    may_admit: Collection[Pair],
    ours: Callable[[dict[str, Any]], bool],
) -> list[str]:
    """What `after` would grant beyond `before` plus `may_admit` (empty: the write is safe)."""
    problems = _kept_structure(before, after, ours)
    changed = _changed(before, after)
    ids: set[str | None] = {None, _PROBE_ID, *(i for _, i in may_admit)}
    ids.update(_condition_values(changed, "sts:externalid"))
    principals = _trust_principals([changed], [p for p, _ in may_admit])
    probes = [(p, i) for p in principals for i in sorted(ids, key=lambda v: (v is not None, v or ""))]

    def judge(doc: dict[str, Any] | None) -> Callable[[Pair], tuple[bool, bool]]:
        own_denies = {str(s.get("Sid")) for s in statements(doc) if ours(s)}

        def decide(pair: Pair) -> tuple[bool, bool]:
            decision = evaluate_trust(doc or {}, pair[0], pair[1])
            return decision.allowed, bool(set(decision.matched_deny) - own_denies)

        return decide

    admitted_before, denied_before = _decisions(probes, judge(before))
    admitted_after, denied_after = _decisions(probes, judge(after))
    granted = {i for _, i in may_admit}
    for principal, external_id in sorted(admitted_after - admitted_before - set(may_admit), key=str):
        if external_id is None:
            with_id = "without an external ID"
        elif external_id == _PROBE_ID:
            with_id = "with any external ID"
        elif external_id in granted:
            with_id = "with the external ID being granted"
        else:
            with_id = "with another external ID"
        problems.append(f"newly admit {principal} {with_id}")
    for principal, _ in sorted(denied_before - denied_after, key=str):
        problems.append(f"stop denying {principal}")
    return sorted(set(problems))


def identity_violations(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    *,
    may_allow: Collection[str],
    ours: Callable[[dict[str, Any]], bool],
    action: str = "sts:AssumeRole",
) -> list[str]:
    """What the identity policy `after` would allow beyond `before` plus `action` on `may_allow`."""
    problems = _kept_structure(before, after, ours)
    resources: set[str] = set(may_allow)
    actions: set[str] = {action, "sts:TagSession", "sts:SetSourceIdentity", "iam:PassRole"}
    for doc in (_changed(before, after),):
        for stmt in statements(doc):
            resources.update(_filled(str(r)) for r in as_list(stmt.get("Resource")) + as_list(stmt.get("NotResource")))
            actions.update(_filled(str(a)) for a in as_list(stmt.get("Action")) + as_list(stmt.get("NotAction")))
    partition = _partition(resources)
    resources.add(f"arn:{partition}:iam::{_PROBE_ACCOUNT}:role/{_PROBE_NAME}")
    probes = [(a, r) for a in sorted(actions) for r in sorted(resources)]

    def judge(doc: dict[str, Any] | None) -> Callable[[tuple[str, str]], tuple[bool, bool]]:
        docs = [doc] if doc else []

        def decide(probe: tuple[str, str]) -> tuple[bool, bool]:
            decision = evaluate_identity(docs, probe[0], probe[1])
            return decision.allowed, bool(decision.matched_deny)

        return decide

    allowed_before, denied_before = _decisions(probes, judge(before))
    allowed_after, denied_after = _decisions(probes, judge(after))
    permitted = {(action, r) for r in may_allow}
    for granted_action, resource in sorted(allowed_after - allowed_before - permitted):
        problems.append(f"newly allow {granted_action} on {resource}")
    for denied_action, resource in sorted(denied_before - denied_after):
        problems.append(f"stop denying {denied_action} on {resource}")
    return sorted(set(problems))
