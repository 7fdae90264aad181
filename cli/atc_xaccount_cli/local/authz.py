"""The bootstrap automation role on the emulator: created from its template, and enforced.

`bootstrap/automation-role.yaml` is what a StackSet creates in every target account.
The emulator creates the same role from the same file (trust and inline policy resolved
as CloudFormation would), so the workflow runs with exactly the permissions the
template grants, and nothing else.

Enforcement is selective. moto checks identity policies only with its IAM authorization
switched on, and then for every request; but the Step Functions interpreter and the
steps' own automation-account calls are signed with credentials moto does not know, so
global enforcement would refuse them. While `installed()`, requests signed with
assumed-role credentials of the automation role are authorized; every other request
passes as before. An authorized request is checked in two halves:

- moto's own checks, as with its authorization on: the SigV4 signature, then
  `check_action_permitted` (Action, Resource, Effect of the role's policies). moto
  passes the IAM resource only for role names of existing roles (`*` otherwise, so a
  policy ARN in `Resource` would never match): the real ARN of the request's role or
  policy is computed here and handed to moto instead.
- `Condition` blocks: moto evaluates them only through its trust-policy code, which
  knows `StringEquals` alone, skips every other operator as satisfied and is given no
  context key but `sts:ExternalId`; an identity-policy condition such as
  `ArnEquals iam:PolicyARN` is therefore always met for moto. The same request is
  decided again by the project's evaluator (`atc_xaccount.evaluate.evaluate_identity`)
  with the request's condition keys (`iam:PolicyARN`, `aws:PrincipalArn`,
  `aws:ResourceAccount` — the bucket's owner for S3 —, ...); its denial names itself in
  the AccessDenied message.
- KMS (the doctor's key reads): moto authorizes KMS requests against `*` and never asks
  the key policy. The emulator authorizes them against the key's ARN, as AWS does, and
  then asks the key policy too (the account root with `kms:*`, or the role itself), which
  AWS requires on top of IAM.

The emulator's own seeding and snapshots use an administrator session (`ADMIN_ROLE`,
which moto lets anyone assume without it existing), so they are never judged as the
automation role.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.iam.models import iam_backends
from moto.sts.models import AssumedRole, sts_backends
from moto.utilities.utils import get_partition

from atc_xaccount.evaluate import ALLOWED, Who, evaluate_identity, judge_resource_policy

# The template's roles live in bootstrap.py; these names are imported from here too.
from atc_xaccount_cli.local.bootstrap import (
    BOOTSTRAP_TEMPLATE,
    NAME_PARAMETERS,
    BootstrapError,
    BootstrapRole,
    Mutation,
    bootstrap_parameters,
    deployed_names,
    load_bootstrap_role,
    load_operator_role,
    without,
)
from atc_xaccount_cli.local.request_context import (
    POLICY_ARN_ACTIONS,
    json_body,
    key_policy,
    param,
    resource_account,
    resource_of,
)
from atc_xaccount_cli.local.template import load_yaml

__all__ = [
    "BOOTSTRAP_TEMPLATE",
    "NAME_PARAMETERS",
    "BootstrapError",
    "BootstrapRole",
    "Mutation",
    "bootstrap_parameters",
    "deployed_names",
    "load_bootstrap_role",
    "load_operator_role",
    "without",
]

#: The emulator's administrator in every account (seeding, snapshots): never created, and
#: never judged as the automation role.
ADMIN_ROLE = "atc-xaccount-local-admin"

#: The operator the emulator's operator commands run as (a world's `operator` may name
#: another), and whom its bootstrap stack instances name in OperatorPrincipalArns. Not
#: named `<stack>-*`: the automation role admits the automation account's roles of that name.
OPERATOR_ROLE_NAME = "local-atc-operator"

#: Enforcement is on for every emulator; `ATC_XACCOUNT_LOCAL_ENFORCE=0` switches it off.
ENFORCE_ENV = "ATC_XACCOUNT_LOCAL_ENFORCE"


CONDITION_JUDGE = "Condition judged by atc-xaccount's evaluator: moto does not evaluate identity-policy conditions"


# --- how emulators are told to enforce ----------------------------------------------------


@dataclass(frozen=True)
class Enforcement:
    enabled: bool = False
    mutate: Mutation | None = None
    evaluate_conditions: bool = True


# On unless switched off: every emulated run proves the steps need nothing more.
_defaults = Enforcement(enabled=os.environ.get(ENFORCE_ENV, "1") != "0")


@contextmanager
def enforcing(
    enabled: bool = True, *, mutate: Mutation | None = None, evaluate_conditions: bool = True
) -> Iterator[None]:
    """Emulators created inside the block enforce the bootstrap role (or, `enabled=False`, do not).

    `mutate` changes the role before it is created (tests remove a permission with it);
    `evaluate_conditions=False` leaves moto's half alone, to show what moto does not check.
    """
    global _defaults
    saved = _defaults
    _defaults = Enforcement(enabled, mutate, evaluate_conditions)
    try:
        yield
    finally:
        _defaults = saved


# --- the emulator's side ------------------------------------------------------------------


@dataclass
class AutomationRoleAuthz:
    """Creates the automation role in each emulated account and, when enabled, enforces it."""

    root: Path
    parameters: dict[str, str]
    automation_account: str
    enabled: bool = False
    mutate: Mutation | None = None
    evaluate_conditions: bool = True
    partition: str = "aws"
    _template: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Parameters of each account's stack instance beyond the stack set's (a world's `bootstrap`).
    stack_instances: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    #: Requests of the automation role that were judged and allowed, by action.
    allowed: Counter[str] = field(default_factory=Counter, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_emulator(
        cls, root: Path, parameters: dict[str, str], automation_account: str, partition: str, enforce: bool | None
    ) -> AutomationRoleAuthz:
        """Settings from `enforcing()` unless `enforce` says otherwise; fails now on a bad template."""
        settings = _defaults
        operator = f"arn:{partition}:iam::{automation_account}:role/{OPERATOR_ROLE_NAME}"
        authz = cls(
            root,
            {"OperatorPrincipalArns": operator, **parameters, "AutomationAccountId": automation_account},
            automation_account,
            enabled=settings.enabled if enforce is None else enforce,
            mutate=settings.mutate,
            evaluate_conditions=settings.evaluate_conditions,
            partition=partition,
            _template=load_yaml(root / BOOTSTRAP_TEMPLATE),
        )
        authz.role_for(automation_account)
        return authz

    def role_for(self, account: str) -> BootstrapRole:
        return load_bootstrap_role(
            self.root,
            {**self.parameters, **self.stack_instances.get(account, {})},
            account=account,
            partition=self.partition,
            mutate=self.mutate,
            template=self._template,
        )

    def operator_role_for(self, account: str) -> BootstrapRole | None:
        """The operators' read-only role of `account` (None when its stack instance names no operator)."""
        return load_operator_role(
            self.root,
            {**self.parameters, **self.stack_instances.get(account, {})},
            account=account,
            partition=self.partition,
            template=self._template,
        )

    @property
    def judged_roles(self) -> frozenset[str]:
        """The bootstrap roles whose sessions are enforced: the automation role, the operators' role."""
        names = {self.role_name}
        operator = self.operator_role_for(self.automation_account)
        if operator is not None:
            names.add(operator.name)
        return frozenset(n.lower() for n in names)

    @property
    def role_name(self) -> str:
        return self.role_for(self.automation_account).name

    def ensure_role(self, iam: Any, account: str, overrides: dict[str, str] | None = None) -> None:
        """Create the role as the bootstrap stack would; an existing role keeps its policies
        unless `overrides` (the stack instance's parameters) are given: then they are redeployed."""
        if overrides is not None:
            self.stack_instances[account] = dict(overrides)
        role = self.role_for(account)
        try:
            iam.get_role(RoleName=role.name)
            if overrides is not None:
                self.apply(iam, role)
                self._ensure_operator_role(iam, account)
            return
        except iam.exceptions.NoSuchEntityException:
            pass
        iam.create_role(
            RoleName=role.name,
            AssumeRolePolicyDocument=json.dumps(role.trust),
            MaxSessionDuration=role.max_session_duration,
            Description=role.description,
        )
        self.apply(iam, role)
        self._ensure_operator_role(iam, account)

    def _ensure_operator_role(self, iam: Any, account: str) -> None:
        """The operators' role as the stack instance defines it: created, updated, or absent."""
        role = self.operator_role_for(account)
        given = {**self.parameters, **self.stack_instances.get(account, {})}
        name = bootstrap_parameters(self._template, given)["OperatorRoleName"]
        try:
            iam.get_role(RoleName=name)
            exists = True
        except iam.exceptions.NoSuchEntityException:
            exists = False
        if role is None:
            if exists:  # redeployed without operators: the stack deletes the role
                for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                    iam.delete_role_policy(RoleName=name, PolicyName=policy)
                iam.delete_role(RoleName=name)
            return
        if exists:
            iam.update_assume_role_policy(RoleName=role.name, PolicyDocument=json.dumps(role.trust))
        else:
            iam.create_role(
                RoleName=role.name,
                AssumeRolePolicyDocument=json.dumps(role.trust),
                MaxSessionDuration=role.max_session_duration,
                Description=role.description,
            )
        self.apply(iam, role)

    def apply(self, iam: Any, role: BootstrapRole) -> None:
        """Make the role's inline policies exactly `role.policies` (tests re-apply a mutated role)."""
        for name in iam.list_role_policies(RoleName=role.name)["PolicyNames"]:
            if name not in role.policies:
                iam.delete_role_policy(RoleName=role.name, PolicyName=name)
        for name, document in role.policies.items():
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(document))

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Patch moto's authorization for the emulator's lifetime (a no-op when not enabled)."""
        if not self.enabled:
            yield
            return
        original = ActionAuthenticatorMixin._authenticate_and_authorize_action
        judge = _Judge(self.judged_roles, self)

        def authenticate_and_authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
            caller = judge.automation_caller(response)
            if caller is None:
                original(response, iam_request_cls, resource)
            else:
                judge.authorize(response, iam_request_cls, resource, caller)

        ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_authorize  # type: ignore[method-assign]
        try:
            yield
        finally:
            ActionAuthenticatorMixin._authenticate_and_authorize_action = original  # type: ignore[method-assign]


# --- the judge ----------------------------------------------------------------------------


class _Judge:
    """Decides the bootstrap roles' requests (automation, operators); counts what it allowed."""

    def __init__(self, role_names: frozenset[str], authz: AutomationRoleAuthz) -> None:
        self.role_names = role_names
        self.authz = authz

    def automation_caller(self, response: Any) -> AssumedRole | None:
        """The STS session behind the request when it is one of a bootstrap role's."""
        headers = response.headers
        authorization = headers.get("Authorization") or ""
        if not headers.get("X-Amz-Security-Token") or "Credential=" not in authorization:
            return None
        scope = authorization.partition("Credential=")[2].partition(",")[0].split("/")
        if len(scope) < 3:
            return None
        backend = sts_backends[response.current_account][get_partition(scope[2])]
        assumed = backend.get_assumed_role_from_access_key(scope[0])
        if assumed is None or assumed.role_arn.rsplit("/", 1)[-1].lower() not in self.role_names:
            return None
        return assumed

    def authorize(self, response: Any, iam_request_cls: type, resource: str, caller: AssumedRole) -> None:
        """moto's checks with the request's real resource, then the conditions by our evaluator."""
        parsed = urlparse(response.uri)
        path = response.raw_path + (f"?{parsed.query}" if parsed.query else "")
        request = iam_request_cls(
            account_id=response.current_account,
            method=response.method,
            path=path,
            data=response.data,
            body=response.raw_body,
            headers=response.headers,
            action=response._get_action(),
        )
        request.check_signature()
        action = request._action
        if action == "sts:GetCallerIdentity":
            return  # AWS allows it to every principal, whatever the policies say
        partition = caller.partition
        data = json_body(response) if action.startswith("kms:") else response.data
        target = resource_of(action, data, response.current_account, partition, resource)
        try:
            request.check_action_permitted(target)
        except AccessDeniedError as exc:
            # AWS names the resource and why; moto's text stops at the action.
            raise AccessDeniedError(
                user_arn=caller.arn,
                action=f"{action} on resource: {target} because no identity-based policy allows the {action} action",
            ) from exc
        if self.authz.evaluate_conditions:
            self._judge_conditions(caller, action, target, response.data)
        if action.startswith("kms:"):
            self._judge_key_policy(caller, action, target)
        with self.authz.lock:
            self.authz.allowed[action] += 1

    def _judge_key_policy(self, caller: AssumedRole, action: str, key_arn: str) -> None:
        """KMS needs the key policy's consent too (moto asks only IAM): the root with kms:*, or the role itself."""
        policy = key_policy(key_arn, caller.account_id)
        if policy is None:
            return  # no such key: moto answers NotFound itself
        principal = f"arn:{caller.partition}:iam::{caller.account_id}:role/{_role_name(caller)}"
        decision = judge_resource_policy("key policy", policy, Who(principal), action, key_arn)
        if decision.outcome != ALLOWED:
            raise AccessDeniedError(
                user_arn=caller.arn,
                action=f"{action} on resource: {key_arn} because the key policy does not allow it ({decision.reason})",
            )

    def _judge_conditions(self, caller: AssumedRole, action: str, target: str, data: dict[str, Any]) -> None:
        account, partition = caller.account_id, caller.partition
        context: dict[str, Any] = {
            "aws:PrincipalArn": f"arn:{partition}:iam::{account}:role/{_role_name(caller)}",
            "aws:PrincipalAccount": account,
        }
        policy_arn = param(data, "PolicyArn")
        if action in POLICY_ARN_ACTIONS and policy_arn:
            context["iam:PolicyARN"] = policy_arn
        owner = resource_account(target, account)
        if owner:
            context["aws:ResourceAccount"] = owner
        decision = evaluate_identity(
            role_documents(account, partition, _role_name(caller)), action, target, context=context
        )
        if not decision.allowed:
            raise AccessDeniedError(
                user_arn=caller.arn,
                action=f"{action} on resource: {target} because {decision.reason} ({CONDITION_JUDGE})",
            )


def _role_name(caller: AssumedRole) -> str:
    return str(caller.role_arn).rsplit("/", 1)[-1]


def role_documents(account: str, partition: str, role_name: str) -> list[dict[str, Any]]:
    """The role's identity policies as moto holds them: inline documents, then attached defaults."""
    backend = iam_backends[account][partition]
    docs = [_as_dict(backend.get_role_policy(role_name, name)[1]) for name in backend.list_role_policies(role_name)]
    attached, _ = backend.list_attached_role_policies(role_name)
    for policy in attached:
        default = next(v for v in policy.versions if v.is_default)
        docs.append(_as_dict(default.document))
    return docs


def _as_dict(document: Any) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else dict(document)
