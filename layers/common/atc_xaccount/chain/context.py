"""What the chain's links share: a session's request context and a role's own judgement (pure).

A role's identity policies decide an action only within its permissions boundary, and
only if every one of them could be read: `judge_role` is that rule, used by every link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atc_xaccount.arns import split_arn
from atc_xaccount.chain.model import BROKEN, OK, ChainDocuments, RoleDocs
from atc_xaccount.documents import as_list
from atc_xaccount.evaluate import ABSENT_KEYS, ALLOWED, UNDECIDABLE, Judgement, Who, judge_identity, within_boundary


def principal_context(docs: ChainDocuments, role: RoleDocs) -> tuple[dict[str, object], frozenset[str]]:
    """What the request of a session of `role` carries that is known here, and what is known absent."""
    ctx: dict[str, object] = {"aws:PrincipalType": "AssumedRole"}
    absent = set(ABSENT_KEYS)
    if role.account in docs.organizations:
        org = docs.organizations[role.account]
        if org is None:
            absent.add("aws:principalorgid")
        else:
            ctx["aws:PrincipalOrgID"] = org
    return ctx, frozenset(absent)


def who_of(role: RoleDocs) -> Who:
    """A session of the role, its name unknown here (Cluster Manager's, an EC2 instance's)."""
    return Who(role.arn, role.unique_id, boundary=role.boundary is not None)


def judge_role(
    role: RoleDocs, action: str, resource: str, context: Mapping[str, object], absent: frozenset[str]
) -> Judgement:
    """The role's identity policies within its boundary; an unread policy leaves an Allow undecidable."""
    ctx = {"aws:PrincipalArn": role.arn, "aws:PrincipalAccount": role.account, **context}
    judged = judge_identity(list(role.policies), action, resource, context=ctx, absent=absent)
    boundary = None
    if role.boundary is not None:
        name, document = role.boundary
        boundary = judge_identity(
            [(f"boundary {name.rsplit('/', 1)[-1]}", document)], action, resource, context=ctx, absent=absent
        )
    result = within_boundary(judged, boundary)
    if result.outcome == ALLOWED and role.unreadable:
        unread = "; ".join(f"{k}: {v}" for k, v in role.unreadable.items())
        return Judgement(UNDECIDABLE, f"allowed, but not every policy could be read ({unread})", result.allow)
    return result


def verdict_of(outcome: str) -> str:
    """A judgement's outcome as a link's verdict: anything but allowed or undecidable is broken."""
    return OK if outcome == ALLOWED else UNDECIDABLE if outcome == UNDECIDABLE else BROKEN


def aws_principals(stmt: dict[str, Any]) -> list[str]:
    """The AWS entries of a statement's Principal, as IAM stores them (ARNs or unique IDs)."""
    principal = stmt.get("Principal")
    if not isinstance(principal, dict):
        return []
    return [str(p) for p in as_list(principal.get("AWS"))]


def role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def account_of(arn: str) -> str:
    return split_arn(arn)[3]
