"""Yes or no, for the places that must act on an answer: the same judgement, failing towards deny.

Verify, the never-widen guard, the audit and the emulator's enforcement ask "is it
allowed?" of a fully known request (every key the context does not carry is absent). A
statement that cannot be judged (an unsupported operator, a policy variable) then counts
as an Allow that does not match and as a Deny that does: `allowed` is True only when the
judgement is `allowed`, and `matched_deny` lists the Denies that might apply as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atc_xaccount.documents import statements
from atc_xaccount.evaluate.conditions import context_of
from atc_xaccount.evaluate.judgement import Judgement, Request, decide
from atc_xaccount.evaluate.principals import Who


@dataclass(frozen=True)
class Decision:
    """Outcome plus the statements that decided it (Sid, or `#index` when unnamed)."""

    allowed: bool
    reason: str
    matched_allow: list[str] = field(default_factory=list)
    matched_deny: list[str] = field(default_factory=list)


def _decision(judged: Judgement) -> Decision:
    return Decision(judged.allowed, judged.reason, list(judged.allow), [*judged.deny, *judged.unknown_deny])


def evaluate_trust(
    doc: dict[str, Any],
    principal: str | Who,
    external_id: str | None,
    *,
    action: str = "sts:AssumeRole",
    context: dict[str, Any] | None = None,
) -> Decision:
    """Would this trust (or other resource) policy let `principal` call `action` with this external ID?

    A role's ARN stands for a session of that role whose name is not known: a role acts
    only through its sessions.
    """
    who = principal if isinstance(principal, Who) else Who(principal)
    base: dict[str, object] = {"aws:PrincipalArn": who.arn, "aws:PrincipalAccount": who.account}
    if external_id is not None:
        base["sts:ExternalId"] = external_id
    request = Request(action, None, context_of(base, context), None, who)
    labelled = [(str(s.get("Sid") or f"#{i}"), s) for i, s in enumerate(statements(doc))]
    return _decision(decide(labelled, request, f"{action} for {who.arn}"))


def evaluate_identity(
    docs: list[dict[str, Any]],
    action: str,
    resource: str,
    *,
    context: dict[str, Any] | None = None,
) -> Decision:
    """Do these identity policies allow `action` on `resource`? Labels: Sid or `#doc.index`."""
    request = Request(action, resource, context_of({}, context), None)
    labelled = [
        (str(s.get("Sid") or f"#{d}.{i}"), s) for d, doc in enumerate(docs) for i, s in enumerate(statements(doc))
    ]
    return _decision(decide(labelled, request, f"{action} on {resource}"))
