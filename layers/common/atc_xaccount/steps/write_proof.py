"""The bootstrap allows it, or Preflight says so: every planned write, proven before the first.

Preflight's reads succeed for names the account's bootstrap stack instance does not
manage (`GetPolicy` is allowed on every policy of the account, for the doctor), so a
custom `assumePolicyName` used to pass Preflight, take the locks and fail in
EnsureAssumePolicy. Now Preflight reads the automation role's own policy once per
account that has writes planned (`iam:GetRolePolicy` on itself, statement
`ReadOwnPolicy`) and evaluates each planned write with the project's evaluator, with the
request context IAM would use (`iam:PolicyARN` for an attachment). A write it does not
allow fails `AutomationRoleDenied`, naming the bootstrap parameter to set, before any
write and before any lock.

What this cannot see (SCPs, a permissions boundary on the automation role, a policy
attached to it by hand) can still refuse a write later; that write then fails
`AutomationRoleDenied` as before and the execution is rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from atc_xaccount import bootstrap_names, iam_ops
from atc_xaccount.errors import AutomationRoleDenied, bootstrap_fix
from atc_xaccount.evaluate import evaluate_identity
from atc_xaccount.steps.context import StepContext

#: The inline policy `bootstrap/automation-role.yaml` gives the automation role.
AUTOMATION_POLICY_NAME = "atc-xaccount-automation"

UPDATE_BOOTSTRAP = (
    "update that account's bootstrap stack instance to the current bootstrap/automation-role.yaml "
    "(statement ReadOwnPolicy lets the role read its own policy, so Preflight can prove each write "
    "before the first), e.g. aws cloudformation update-stack-set --stack-set-name atc-xaccount-bootstrap "
    "--template-body file://bootstrap/automation-role.yaml ..."
)


@dataclass(frozen=True)
class PlannedWrite:
    """One IAM write a converge step will make: action, resource ARN, and what names it."""

    account: str
    action: str
    resource: str
    #: (resource kind, name) whose bootstrap parameter allows it: ("policy", "atc-s3-assume-role").
    named: tuple[str, str]
    context: dict[str, str] = field(default_factory=dict)


def planned_writes(
    *,
    cm: str,
    s3: str,
    node_role: tuple[str, str],
    access_role: tuple[str, str],
    policy: tuple[str, str],
    create_policy: bool,
    version_policy: bool,
    retire_version: bool,
    attach: bool,
    trust: bool,
) -> list[PlannedWrite]:
    """The writes of the plan, in the order the steps make them. Roles and the policy are (name, ARN)."""
    policy_name, policy_arn = policy
    writes = []
    if create_policy:
        writes.append(PlannedWrite(cm, "iam:CreatePolicy", policy_arn, ("policy", policy_name)))
    if version_policy and retire_version:
        writes.append(PlannedWrite(cm, "iam:DeletePolicyVersion", policy_arn, ("policy", policy_name)))
    if version_policy:
        writes.append(PlannedWrite(cm, "iam:CreatePolicyVersion", policy_arn, ("policy", policy_name)))
    if attach:
        writes.append(
            PlannedWrite(
                cm, "iam:AttachRolePolicy", node_role[1], ("role", node_role[0]), {"iam:PolicyARN": policy_arn}
            )
        )
    if trust:
        writes.append(PlannedWrite(s3, "iam:UpdateAssumeRolePolicy", access_role[1], ("role", access_role[0])))
    return writes


def prove_allowed(ctx: StepContext, writes: Iterable[PlannedWrite]) -> int:
    """Raise `AutomationRoleDenied` for the first planned write the automation role may not make.

    Reads the role's own policy once per account (returns how many it read).
    """
    policies: dict[str, list[dict[str, Any]]] = {}
    for write in writes:
        if write.account not in policies:
            policies[write.account] = [_own_policy(ctx, write.account)]
        documents = policies[write.account]
        decision = evaluate_identity(documents, write.action, write.resource, context=_context(ctx, write))
        if not decision.allowed:
            raise _denied(write, decision.reason, _parameter(documents, ctx, write))
    return len(policies)


def _own_policy(ctx: StepContext, account: str) -> dict[str, Any]:
    role = ctx.sessions.writer_role_name  # the automation role, also when an operator plans
    try:
        return iam_ops.role_policy(ctx.sessions.client("iam", account), account, role, AUTOMATION_POLICY_NAME)
    except AutomationRoleDenied as exc:
        raise AutomationRoleDenied(
            account, exc.action, exc.resource, None, None, exc.aws_message, fix=UPDATE_BOOTSTRAP
        ) from exc
    except iam_ops.AwsOperationFailed as exc:
        if exc.code != "NoSuchEntity":
            raise
        raise AutomationRoleDenied(
            account,
            "iam:GetRolePolicy",
            f"policy {AUTOMATION_POLICY_NAME} of role {role}",
            None,
            None,
            exc.aws_message,
            fix=UPDATE_BOOTSTRAP,
        ) from exc


def _context(ctx: StepContext, write: PlannedWrite) -> dict[str, str]:
    """What IAM's request context carries for the automation role's call."""
    return {
        "aws:PrincipalArn": ctx.sessions.writer_role_arn(write.account),
        "aws:PrincipalAccount": write.account,
        "aws:ResourceAccount": write.account,
        **write.context,
    }


def _parameter(documents: list[dict[str, Any]], ctx: StepContext, write: PlannedWrite) -> tuple[str | None, str]:
    """(bootstrap parameter, value) that would allow the write.

    An attachment names two things: the node role (its resource) and the assume policy
    (its `iam:PolicyARN` condition). The policy is the culprit when the role may not write
    it either (statement WriteAssumePolicy names the same parameter).
    """
    kind, name = write.named
    policy_arn = write.context.get("iam:PolicyARN")
    if policy_arn is not None:
        own = evaluate_identity(documents, "iam:CreatePolicyVersion", policy_arn, context=_context(ctx, write)).allowed
        if not own:
            kind, name = "policy", policy_arn.rsplit("/", 1)[-1]
    return bootstrap_names.parameter_for(kind, write.account, name), name


def _denied(write: PlannedWrite, reason: str, parameter: tuple[str | None, str]) -> AutomationRoleDenied:
    name, value = parameter[0], parameter[1] if parameter[0] else None
    why = f"Preflight evaluated the automation role's policy {AUTOMATION_POLICY_NAME} before any write: {reason}"
    fix = f"{bootstrap_fix(write.account, name, value)}. {why}"
    return AutomationRoleDenied(write.account, write.action, write.resource, name, value, why, fix=fix)
