"""The bootstrap template (`bootstrap/automation-role.yaml`), read as CloudFormation would.

A StackSet creates it in every target account: the automation role the workflows assume
(they write), and, when operators are named, the operators' read-only role. The emulator
creates both from the same file (`authz.py` enforces them), and the operator CLI reads the
names a deployed automation role was created with (`deployed_names`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from atc_xaccount_cli.local.template import Resolver, TemplateError, load_yaml

BOOTSTRAP_TEMPLATE = Path("bootstrap") / "automation-role.yaml"


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


#: The template's two roles: the workflows' (writes), and the operators' (reads only).
AUTOMATION_ROLE, OPERATOR_ROLE = "AutomationRole", "OperatorRole"


def _role_resource(template: dict[str, Any], logical_id: str = AUTOMATION_ROLE) -> dict[str, Any]:
    roles = {k: r for k, r in (template.get("Resources") or {}).items() if r.get("Type") == "AWS::IAM::Role"}
    if logical_id not in roles:
        raise BootstrapError(f"{BOOTSTRAP_TEMPLATE}: no AWS::IAM::Role {logical_id} (found {', '.join(sorted(roles))})")
    return dict(roles[logical_id])


def bootstrap_parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """Defaults overridden by `given` (keys the template does not declare are ignored), validated.

    A CommaDelimitedList's pattern applies to each of its values, as in CloudFormation.
    """
    declared = template.get("Parameters") or {}
    values: dict[str, str] = {}
    for name, spec in declared.items():
        value = given.get(name, spec.get("Default"))
        if value is None:
            raise BootstrapError(f"{BOOTSTRAP_TEMPLATE}: parameter {name} has no default and was not given")
        pattern = spec.get("AllowedPattern")
        each = str(value).split(",") if spec.get("Type") == "CommaDelimitedList" else [str(value)]
        for part in each:
            if pattern and re.fullmatch(pattern, part.strip()) is None:
                raise BootstrapError(f"{BOOTSTRAP_TEMPLATE}: parameter {name}={value!r} does not match {pattern}")
        values[name] = str(value)
    return values


def _list_parameters(template: dict[str, Any]) -> frozenset[str]:
    declared = template.get("Parameters") or {}
    return frozenset(n for n, spec in declared.items() if spec.get("Type") == "CommaDelimitedList")


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
    role = _load_role(template, AUTOMATION_ROLE, parameters, account, partition)
    if role is None:
        raise BootstrapError(f"{BOOTSTRAP_TEMPLATE}: {AUTOMATION_ROLE} is never created")
    return mutate(role) if mutate is not None else role


def load_operator_role(
    root: Path,
    parameters: dict[str, str],
    *,
    account: str,
    partition: str = "aws",
    template: dict[str, Any] | None = None,
) -> BootstrapRole | None:
    """The operators' read-only role in `account`; None when the stack creates none
    (its condition: `OperatorPrincipalArns` names nobody)."""
    template = template if template is not None else load_yaml(root / BOOTSTRAP_TEMPLATE)
    return _load_role(template, OPERATOR_ROLE, parameters, account, partition)


def _load_role(
    template: dict[str, Any], logical_id: str, parameters: dict[str, str], account: str, partition: str
) -> BootstrapRole | None:
    resource = _role_resource(template, logical_id)
    resolver = Resolver(
        parameters=bootstrap_parameters(template, parameters),
        pseudo={"AWS::Partition": partition, "AWS::AccountId": account},
        attributes={},
        refs={},
        lists=_list_parameters(template),
        conditions=template.get("Conditions") or {},
    )
    condition = resource.get("Condition")
    if condition is not None and not resolver.condition(str(condition)):
        return None
    resolved = resolver.resolve(resource.get("Properties") or {})
    return BootstrapRole(
        name=str(resolved["RoleName"]),
        trust=resolved["AssumeRolePolicyDocument"],
        policies={str(p["PolicyName"]): p["PolicyDocument"] for p in resolved.get("Policies") or []},
        max_session_duration=int(resolved.get("MaxSessionDuration", 3600)),
        description=str(resolved.get("Description", "")),
    )


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
