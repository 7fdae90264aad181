"""The IAM links of the chain: a. the node may assume the access role, b. the trust admits it
with the external ID, f. the access role's sessions last long enough (pure).
"""

from __future__ import annotations

from typing import Any

from atc_xaccount.chain.context import (
    account_of,
    aws_principals,
    judge_role,
    principal_context,
    role_name,
    verdict_of,
    who_of,
)
from atc_xaccount.chain.model import BROKEN, OK, ROLE_CHAINING_MAX_SECONDS, ChainDocuments, Link, RoleDocs
from atc_xaccount.documents import statements
from atc_xaccount.evaluate import (
    ABSENT_KEYS,
    ALLOWED,
    DENIED,
    IMPLICIT,
    UNDECIDABLE,
    Judgement,
    Who,
    judge_resource_policy,
    judge_trust,
)

# --- a. the node may assume the access role -------------------------------------------------------


def assume_link(docs: ChainDocuments, external_id: str | None) -> Link:
    claim = f"{role_name(docs.node_role_arn)} may call sts:AssumeRole on {docs.access_role_arn}"
    node = docs.node
    if node is None:
        return Link(
            "assume",
            claim,
            BROKEN,
            detail=f"role {role_name(docs.node_role_arn)} does not exist",
            fix=f"create {role_name(docs.node_role_arn)} in {account_of(docs.node_role_arn)} (ATC Manager's node role)",
        )
    ctx, absent = principal_context(docs, node)
    ctx["aws:SecureTransport"] = True  # STS answers on HTTPS only
    if external_id is not None:
        ctx["sts:ExternalId"] = external_id
    judged = judge_role(node, "sts:AssumeRole", docs.access_role_arn, ctx, absent)
    verdict = verdict_of(judged.outcome)
    if judged.outcome == IMPLICIT and node.account == account_of(docs.access_role_arn):
        # Same account: a trust policy naming the role itself is enough, no identity policy needed.
        trust = judge_trust((docs.access.trust if docs.access else None) or {}, who_of(node), external_id)
        if trust.outcome == ALLOWED and any(
            node.arn in aws_principals(s) for s in statements(docs.access.trust if docs.access else None)
        ):
            return Link("assume", claim, OK, trust.allow, "same account: the trust policy names the role itself")
    return Link("assume", claim, verdict, judged.statements, judged.reason, _assume_fix(docs, node, judged))


def _assume_fix(docs: ChainDocuments, node: RoleDocs, judged: Judgement) -> str:
    target = docs.access_role_arn
    if judged.outcome == ALLOWED:
        return ""
    if judged.reason.startswith("permissions boundary"):
        boundary = node.boundary[0] if node.boundary else "?"
        return f"let the permissions boundary {boundary} of {node.name} allow sts:AssumeRole on {target}"
    if judged.outcome == DENIED:
        return (
            f"remove or narrow the Deny {', '.join(judged.deny)} on {node.name}: it refuses sts:AssumeRole on {target}"
        )
    if judged.outcome == UNDECIDABLE:
        return f"check by hand that {node.name}'s requests meet the conditions of {', '.join(judged.unknown)}"
    return (
        f"attach {docs.assume_policy_name} (sts:AssumeRole on {target}) to {node.name}: `atc-xaccount register` does it"
    )


# --- b. the trust admits the node with the external ID ---------------------------------------------


def trust_link(docs: ChainDocuments, external_id: str | None) -> Link:
    access = docs.access
    node_name = role_name(docs.node_role_arn)
    claim = f"the trust policy of {role_name(docs.access_role_arn)} admits {node_name} with the external ID"
    if access is None:
        return Link(
            "trust",
            claim,
            BROKEN,
            detail=f"role {role_name(docs.access_role_arn)} does not exist",
            fix=f"create {role_name(docs.access_role_arn)} in {account_of(docs.access_role_arn)} with "
            f"{docs.access_policy_name} attached, as the ATC documentation describes",
        )
    if external_id is None:
        return Link(
            "trust",
            claim,
            BROKEN,
            detail="the cluster has no external ID (no secret)",
            fix="register the cluster: `atc-xaccount register EVENT_FILE` stores one and grants it",
        )
    unique_id = docs.node.unique_id if docs.node else None
    who = who_of(docs.node) if docs.node else Who(docs.node_role_arn)
    ctx: dict[str, object] = {"aws:PrincipalType": "AssumedRole", "aws:SecureTransport": True}
    absent = set(ABSENT_KEYS)
    node_account = account_of(docs.node_role_arn)
    if node_account in docs.organizations:
        org = docs.organizations[node_account]
        if org is None:
            absent.add("aws:principalorgid")
        else:
            ctx["aws:PrincipalOrgID"] = org
    trust = access.trust or {}
    judged = judge_resource_policy(
        "trust",
        trust,
        who,
        "sts:AssumeRole",
        None,
        context={"sts:ExternalId": external_id, **ctx},
        absent=frozenset(absent),
    )
    if judged.outcome == ALLOWED:
        return Link("trust", claim, OK, judged.allow, judged.reason)
    if judged.outcome == DENIED:
        return Link(
            "trust",
            claim,
            BROKEN,
            judged.deny,
            judged.reason,
            f"remove or narrow the trust policy's Deny {', '.join(judged.deny)} of {access.name}: "
            f"it refuses {node_name}",
        )
    if judged.outcome == UNDECIDABLE:
        return Link(
            "trust",
            claim,
            UNDECIDABLE,
            judged.statements,
            judged.reason,
            f"check by hand that Cluster Manager's AssumeRole meets the conditions of {', '.join(judged.unknown)}",
        )
    stale = _stale_grant(trust, docs.node_role_arn, external_id, unique_id)
    if stale is not None:
        label, old_id = stale
        current = f" (the current {node_name} is {unique_id})" if unique_id else ""
        return Link(
            "trust",
            claim,
            BROKEN,
            (label,),
            f"the grant {label} names unique ID {old_id}: {node_name} was deleted and recreated{current}",
            f"re-grant the current {node_name}: `atc-xaccount register EVENT_FILE` (or the audit with --repair) "
            f"replaces the stale {old_id} grant",
        )
    return Link(
        "trust",
        claim,
        BROKEN,
        judged.unknown_deny,
        judged.reason,
        f"grant {node_name} with this external ID in the trust policy of {access.name}: "
        "`atc-xaccount register EVENT_FILE`",
    )


def _stale_grant(
    trust: dict[str, Any], node_arn: str, external_id: str, unique_id: str | None
) -> tuple[str, str] | None:
    """An Allow that would admit the node with this external ID if it were the role whose unique ID it names."""
    for index, stmt in enumerate(statements(trust)):
        if stmt.get("Effect") != "Allow":
            continue
        for entry in aws_principals(stmt):
            if entry.startswith("AROA") and entry != unique_id:
                judged = judge_trust({"Statement": [stmt]}, Who(node_arn, entry), external_id)
                if judged.outcome == ALLOWED:
                    return str(stmt.get("Sid") or f"trust#{index}"), entry
    return None


# --- f. session duration ---------------------------------------------------------------------------


def session_link(docs: ChainDocuments, requested: int) -> Link:
    """Role chaining: atc-node's own credentials are an EC2 role session, so AssumeRole lasts at most an hour.

    AWS: "if you assume a role using role chaining and provide a DurationSeconds parameter
    value greater than one hour, the operation fails", whatever the role's MaxSessionDuration.
    """
    access_name = role_name(docs.access_role_arn)
    claim = f"{access_name} grants the {requested} s session Cluster Manager asks for"
    access = docs.access
    if access is None:
        return Link("session", claim, BROKEN, detail="the access role does not exist")
    maximum = access.max_session_duration
    if requested > ROLE_CHAINING_MAX_SECONDS:
        setting = f" (MaxSessionDuration {maximum} s)" if maximum is not None else ""
        return Link(
            "session",
            claim,
            BROKEN,
            detail=f"{role_name(docs.node_role_arn)}'s credentials are an EC2 role session, so Cluster Manager's "
            f"AssumeRole of {access_name} is role chaining, which AWS caps at {ROLE_CHAINING_MAX_SECONDS} s "
            f'whatever MaxSessionDuration says{setting}: a {requested} s request fails with "The requested '
            'DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining"',
            fix=f"let Cluster Manager ask for sessions of at most {ROLE_CHAINING_MAX_SECONDS} s (AssumeRole's "
            "default); raising MaxSessionDuration does not lift the role-chaining cap",
        )
    if maximum is not None and maximum < requested:
        return Link(
            "session",
            claim,
            BROKEN,
            detail=f"MaxSessionDuration {maximum} s < {requested} s",
            fix=f"aws iam update-role --role-name {access.name} --max-session-duration {requested}",
        )
    read = f"MaxSessionDuration {maximum} s" if maximum is not None else "every role's MaxSessionDuration is"
    return Link(
        "session",
        claim,
        OK,
        detail=f"{requested} s: within the role-chaining cap of {ROLE_CHAINING_MAX_SECONDS} s ({read} at least that)",
    )
