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

import copy
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sts.models import AssumedRole, sts_backends
from moto.utilities.utils import get_partition

from atc_xaccount.evaluate import ALLOWED, Who, evaluate_identity, judge_resource_policy
from atc_xaccount_cli.local.template import Resolver, TemplateError, load_yaml

BOOTSTRAP_TEMPLATE = Path("bootstrap") / "automation-role.yaml"

#: The emulator's administrator in every account (seeding, snapshots): never created, and
#: never judged as the automation role.
ADMIN_ROLE = "atc-xaccount-local-admin"

#: Enforcement is on for every emulator; `ATC_XACCOUNT_LOCAL_ENFORCE=0` switches it off.
ENFORCE_ENV = "ATC_XACCOUNT_LOCAL_ENFORCE"

#: IAM actions whose request context carries `iam:PolicyARN`.
POLICY_ARN_ACTIONS = frozenset(
    {
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:AttachUserPolicy",
        "iam:DetachUserPolicy",
        "iam:AttachGroupPolicy",
        "iam:DetachGroupPolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:PutUserPermissionsBoundary",
    }
)

CONDITION_JUDGE = "Condition judged by atc-xaccount's evaluator: moto does not evaluate identity-policy conditions"


class BootstrapError(TemplateError):
    """The bootstrap template, or a parameter given to it, is something CloudFormation would refuse."""


# --- the role, read from the template ------------------------------------------------------


@dataclass(frozen=True)
class BootstrapRole:
    """The automation role of one account as the bootstrap stack creates it."""

    name: str
    trust: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    max_session_duration: int = 3600
    description: str = ""

    @property
    def documents(self) -> list[dict[str, Any]]:
        return list(self.policies.values())

    def grants(self) -> list[tuple[str, str]]:
        """Every (statement Sid, action) the inline policies allow, in template order."""
        found = []
        for doc in self.policies.values():
            for stmt in doc.get("Statement", []):
                actions = stmt.get("Action", [])
                for action in [actions] if isinstance(actions, str) else actions:
                    found.append((str(stmt.get("Sid", "")), str(action)))
        return found


#: A test's change to the role before it is created (e.g. one permission removed).
Mutation = Callable[[BootstrapRole], BootstrapRole]


def without(sid: str, action: str | None = None) -> Mutation:
    """A mutation removing one action from statement `sid` (the whole statement when None)."""

    def mutate(role: BootstrapRole) -> BootstrapRole:
        policies = copy.deepcopy(role.policies)
        found = False
        for doc in policies.values():
            kept = []
            for stmt in doc.get("Statement", []):
                if stmt.get("Sid") != sid:
                    kept.append(stmt)
                    continue
                found = True
                actions = [stmt["Action"]] if isinstance(stmt["Action"], str) else list(stmt["Action"])
                if action is not None and action in actions and len(actions) > 1:
                    kept.append({**stmt, "Action": [a for a in actions if a != action]})
                elif action is not None and action not in actions:
                    raise KeyError(f"statement {sid} does not grant {action}")
            doc["Statement"] = kept
        if not found:
            raise KeyError(f"no statement {sid} in the bootstrap role")
        return replace(role, policies=policies)

    return mutate


def _role_resource(template: dict[str, Any]) -> dict[str, Any]:
    roles = [r for r in (template.get("Resources") or {}).values() if r.get("Type") == "AWS::IAM::Role"]
    if len(roles) != 1:
        raise BootstrapError(f"{BOOTSTRAP_TEMPLATE}: expected exactly one AWS::IAM::Role, found {len(roles)}")
    return roles[0].get("Properties") or {}


def bootstrap_parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """Defaults overridden by `given` (keys the template does not declare are ignored), validated."""
    declared = template.get("Parameters") or {}
    values: dict[str, str] = {}
    for name, spec in declared.items():
        value = given.get(name, spec.get("Default"))
        if value is None:
            raise BootstrapError(f"{BOOTSTRAP_TEMPLATE}: parameter {name} has no default and was not given")
        pattern = spec.get("AllowedPattern")
        if pattern and re.fullmatch(pattern, str(value)) is None:
            raise BootstrapError(f"{BOOTSTRAP_TEMPLATE}: parameter {name}={value!r} does not match {pattern}")
        values[name] = str(value)
    return values


def load_bootstrap_role(
    root: Path,
    parameters: dict[str, str],
    *,
    account: str,
    partition: str = "aws",
    mutate: Mutation | None = None,
    template: dict[str, Any] | None = None,
) -> BootstrapRole:
    """The role the bootstrap stack creates in `account`, its intrinsics resolved."""
    template = template if template is not None else load_yaml(root / BOOTSTRAP_TEMPLATE)
    props = _role_resource(template)
    resolver = Resolver(
        parameters=bootstrap_parameters(template, parameters),
        pseudo={"AWS::Partition": partition, "AWS::AccountId": account},
        attributes={},
        refs={},
    )
    resolved = resolver.resolve(props)
    role = BootstrapRole(
        name=str(resolved["RoleName"]),
        trust=resolved["AssumeRolePolicyDocument"],
        policies={str(p["PolicyName"]): p["PolicyDocument"] for p in resolved.get("Policies") or []},
        max_session_duration=int(resolved.get("MaxSessionDuration", 3600)),
        description=str(resolved.get("Description", "")),
    )
    return mutate(role) if mutate is not None else role


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
        authz = cls(
            root,
            {**parameters, "AutomationAccountId": automation_account},
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
        judge = _Judge(self.role_name, self)

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
    """Decides the automation role's requests; counts what it allowed, by action."""

    def __init__(self, role_name: str, authz: AutomationRoleAuthz) -> None:
        self.role_name = role_name
        self.authz = authz

    def automation_caller(self, response: Any) -> AssumedRole | None:
        """The STS session behind the request when it is one of the automation role's."""
        headers = response.headers
        authorization = headers.get("Authorization") or ""
        if not headers.get("X-Amz-Security-Token") or "Credential=" not in authorization:
            return None
        scope = authorization.partition("Credential=")[2].partition(",")[0].split("/")
        if len(scope) < 3:
            return None
        backend = sts_backends[response.current_account][get_partition(scope[2])]
        assumed = backend.get_assumed_role_from_access_key(scope[0])
        if assumed is None or assumed.role_arn.rsplit("/", 1)[-1].lower() != self.role_name.lower():
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
        data = _json_body(response) if action.startswith("kms:") else response.data
        target = _resource_of(action, data, response.current_account, partition, resource)
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
        policy = _key_policy(key_arn, caller.account_id)
        if policy is None:
            return  # no such key: moto answers NotFound itself
        principal = f"arn:{caller.partition}:iam::{caller.account_id}:role/{self.role_name}"
        decision = judge_resource_policy("key policy", policy, Who(principal), action, key_arn)
        if decision.outcome != ALLOWED:
            raise AccessDeniedError(
                user_arn=caller.arn,
                action=f"{action} on resource: {key_arn} because the key policy does not allow it ({decision.reason})",
            )

    def _judge_conditions(self, caller: AssumedRole, action: str, target: str, data: dict[str, Any]) -> None:
        account, partition = caller.account_id, caller.partition
        context: dict[str, Any] = {
            "aws:PrincipalArn": f"arn:{partition}:iam::{account}:role/{self.role_name}",
            "aws:PrincipalAccount": account,
        }
        policy_arn = _param(data, "PolicyArn")
        if action in POLICY_ARN_ACTIONS and policy_arn:
            context["iam:PolicyARN"] = policy_arn
        owner = _resource_account(target, account)
        if owner:
            context["aws:ResourceAccount"] = owner
        decision = evaluate_identity(
            role_documents(account, partition, self.role_name), action, target, context=context
        )
        if not decision.allowed:
            raise AccessDeniedError(
                user_arn=caller.arn,
                action=f"{action} on resource: {target} because {decision.reason} ({CONDITION_JUDGE})",
            )


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


def _resource_account(target: str, account: str) -> str | None:
    """aws:ResourceAccount: the bucket owner for S3 (moto knows it), the caller's own for IAM and KMS."""
    if ":s3:::" not in target:
        own = target.startswith("arn:") and (":iam::" in target or ":kms:" in target)
        return account if own else None
    from moto.s3.models import s3_backends

    bucket = target.split(":::", 1)[1].split("/", 1)[0]
    owner = s3_backends.bucket_accounts.get(bucket)
    return str(owner[1]) if owner else None


def _key_policy(key_arn: str, account: str) -> dict[str, Any] | None:
    from moto.kms.models import kms_backends

    parts = key_arn.split(":")
    if len(parts) < 6 or parts[2] != "kms":
        return None
    key = kms_backends[account][parts[3]].keys.get(key_arn.rsplit("/", 1)[-1])
    return _as_dict(key.policy) if key is not None else None


def _json_body(response: Any) -> dict[str, Any]:
    """The parameters of a JSON-protocol request (moto's `data` holds the raw body as a key)."""
    try:
        body = json.loads(response.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _key_arn(key_id: str | None, account: str) -> str | None:
    """The ARN of the key a KMS request names (moto authorizes KMS against `*`, AWS against the key)."""
    from moto.kms.exceptions import NotFoundException as KeyNotFound
    from moto.kms.models import kms_backends

    if not key_id:
        return None
    for backend in kms_backends[account].values():
        try:
            return str(backend.describe_key(backend.any_id_to_key_id(key_id)).arn)
        except KeyNotFound:
            continue
    return None


def _param(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


def _resource_of(action: str, data: dict[str, Any], account: str, partition: str, default: str) -> str:
    """The ARN IAM authorizes `action` against: the role named, else the policy named."""
    if action.startswith("kms:"):
        return _key_arn(_param(data, "KeyId"), account) or default
    if not action.startswith("iam:"):
        return default
    role_name = _param(data, "RoleName")
    if role_name:
        try:
            return str(iam_backends[account][partition].get_role(role_name).arn)
        except NotFoundException:
            return f"arn:{partition}:iam::{account}:role{_param(data, 'Path') or '/'}{role_name}"
    policy_arn = _param(data, "PolicyArn")
    if policy_arn:
        return policy_arn
    policy_name = _param(data, "PolicyName")
    if action == "iam:CreatePolicy" and policy_name:
        return f"arn:{partition}:iam::{account}:policy{_param(data, 'Path') or '/'}{policy_name}"
    return default


# --- which names a deployed automation role allows ----------------------------------------

#: The bootstrap parameters that name what the automation role may touch.
NAME_PARAMETERS = ("NodeRoleName", "AccessRoleName", "AssumePolicyName", "AccessPolicyName")


def deployed_names(
    root: Path,
    policies: dict[str, dict[str, Any]],
    *,
    account: str,
    partition: str,
    automation_account: str = "000000000000",  # only the trust names it, and the trust is not read here
) -> dict[str, str]:
    """The name parameters a deployed automation role was created with, read off its policies.

    The template is rendered with a marker for each parameter; wherever a statement's
    resource carries a marker, the same statement (by Sid) of the deployed policy holds the
    value there. Parameters found nowhere are left out.
    """
    template = load_yaml(root / BOOTSTRAP_TEMPLATE)
    markers = {name: f"atc-{name.lower()}-marker" for name in NAME_PARAMETERS}
    rendered = load_bootstrap_role(
        root,
        {"AutomationAccountId": automation_account, **markers},
        account=account,
        partition=partition,
        template=template,
    )
    deployed = {str(s.get("Sid")): s for doc in policies.values() for s in doc.get("Statement", [])}
    found: dict[str, str] = {}
    for doc in rendered.documents:
        for stmt in doc.get("Statement", []):
            actual = deployed.get(str(stmt.get("Sid")))
            if actual is None:
                continue
            for pattern in _as_list(stmt.get("Resource")):
                for name, marker in markers.items():
                    if marker not in pattern:
                        continue
                    regex = re.escape(pattern).replace(re.escape(marker), r"(?P<value>[\w+=,.@-]+)")
                    for resource in _as_list(actual.get("Resource")):
                        match = re.fullmatch(regex, str(resource))
                        if match and name not in found:
                            found[name] = match.group("value")
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
