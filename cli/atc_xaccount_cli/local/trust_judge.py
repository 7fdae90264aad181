"""Every `sts:AssumeRole` the emulator sees is judged against the target role's trust policy.

moto lets any caller assume any role, in any account (DESIGN 5): a trust policy that
admits only the stack's step roles, or only listed operators, would admit everyone here,
and every test would pass. So the emulator asks the project's evaluator
(`atc_xaccount.evaluate.evaluate_trust`) whether the target role's trust policy admits the
caller, with the request's `sts:ExternalId`, `aws:PrincipalArn`, `aws:PrincipalAccount`
and, when the world says, `aws:PrincipalOrgID`; a refusal is AWS's `AccessDenied`, before
moto sees the request.

Who the caller is:
- a step (a Lambda invocation, signed with the Lambda environment's credentials): its role
  as `sam deploy` names it, `<stack>-<FunctionLogicalId>Role-<suffix>`;
- anyone holding credentials moto issued (an operator's session, the node role in the
  proof of access): the role those credentials are a session of;
- the emulator's own harness (seeding and snapshots as its administrator, a test's direct
  calls with the environment's credentials) is not judged, nor is any call to assume the
  administrator role.

The caller's identity policy must allow the call too when the role is in another account:
the step roles' are judged by `step_roles.py`; an operator's identity is the world's and
not modelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.evaluate import evaluate_trust

#: Role name suffix of the emulated step roles (SAM appends a random one).
STEP_ROLE_SUFFIX = "LOCAL"


@dataclass
class AssumeRoleJudge:
    """Decides every AssumeRole call of the emulated world (`enabled`), by trust policy."""

    partition: str
    account: str
    stack_name: str
    #: The Lambda environment's access key: calls signed with it are a step's own.
    own_access_key: str
    #: Roles never judged: the emulator's administrator.
    exempt_roles: frozenset[str]
    #: Account -> organization, for `aws:PrincipalOrgID` (the world's `organizationId`).
    organizations: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    #: (caller, role ARN) of every judged and admitted AssumeRole.
    admitted: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def step_role_arn(self, function: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.stack_name}-{function}Role-{STEP_ROLE_SUFFIX}"

    def judge(self, step: str | None, client: Any, params: dict[str, Any]) -> None:
        """Raise AWS's AccessDenied unless the target role's trust policy admits the caller."""
        role_arn = str(params.get("RoleArn") or "")
        if not self.enabled or role_arn.rsplit("/", 1)[-1] in self.exempt_roles:
            return
        caller = self._caller(step, client)
        if caller is None:
            return
        trust = _trust_policy(role_arn)
        if trust is None:
            return  # no such role: moto answers for it
        account = caller.split(":")[4]
        context: dict[str, Any] = {}
        if account in self.organizations:
            context["aws:PrincipalOrgID"] = self.organizations[account]
        decision = evaluate_trust(trust, caller, params.get("ExternalId"), context=context)
        if not decision.allowed:
            raise _access_denied(caller, role_arn, decision.reason)
        self.admitted.append((caller, role_arn))

    def _caller(self, step: str | None, client: Any) -> str | None:
        """The principal ARN the request is made as; None for the emulator's harness."""
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        if credentials is None:
            return None
        if credentials.access_key == self.own_access_key:
            return self.step_role_arn(step) if step else None
        return _session_role(credentials.access_key)


def _session_role(access_key: str) -> str | None:
    """The role ARN of the STS session these credentials belong to (moto issued them)."""
    from moto.iam.models import get_account_id_from
    from moto.sts.models import sts_backends

    account = get_account_id_from(access_key)
    for backend in sts_backends[account].values():
        assumed = backend.get_assumed_role_from_access_key(access_key)
        if assumed is not None:
            return str(assumed.role_arn)
    return None


def _trust_policy(role_arn: str) -> dict[str, Any] | None:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    parts = role_arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return None
    try:
        role = iam_backends[parts[4]][parts[1]].get_role(parts[5].rsplit("/", 1)[-1])
    except NotFoundException:
        return None
    document = role.assume_role_policy_document
    return json.loads(document) if isinstance(document, str) else dict(document)


def _access_denied(caller: str, role_arn: str, reason: str) -> ClientError:
    """STS's refusal, as AWS words it (the reason is the evaluator's, for the reader)."""
    message = f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn} ({reason})"
    return ClientError(
        {
            "Error": {"Type": "Sender", "Code": "AccessDenied", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "AssumeRole",
    )


#: The dispatcher's hook: (step or None, client, params) for each sts:AssumeRole.
JudgeHook = Callable[[str | None, Any, dict[str, Any]], None]
