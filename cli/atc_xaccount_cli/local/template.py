"""Read `template.yaml` the way SAM would, for the emulator.

The emulator creates the functions, the state machine and the rule's pattern from the
template itself, so there is no second copy of the workflow in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SHORT_FORMS = {
    "Ref": "Ref",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "GetAZs": "Fn::GetAZs",
    "Base64": "Fn::Base64",
    "Condition": "Condition",
}


class TemplateError(ValueError):
    """The template lacks something the emulator needs, or uses what it cannot resolve."""


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = _SHORT_FORMS.get(suffix, f"Fn::{suffix}")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if key == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    #: Seconds Lambda lets an invocation run (the function's Timeout, else Globals', else 3).
    timeout: int = 3


@dataclass
class StateMachineSpec:
    logical_id: str
    definition_path: Path
    substitutions: dict[str, Any]
    patterns: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SamApp:
    """What the emulator needs from `template.yaml`."""

    root: Path
    parameters: dict[str, str]
    environment: dict[str, Any]
    functions: dict[str, FunctionSpec]
    state_machines: dict[str, StateMachineSpec]
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    #: AWS::SecretsManager::Secret resources (logical id -> properties): the fingerprint key.
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The template's Conditions, and its CommaDelimitedList parameters (for the Resolver).
    conditions: dict[str, Any] = field(default_factory=dict)
    list_parameters: frozenset[str] = frozenset()

    @classmethod
    def load(cls, root: Path, overrides: dict[str, str] | None = None) -> SamApp:
        path = root / "template.yaml"
        if not path.exists():
            raise TemplateError(f"{path} not found")
        template = load_yaml(path)
        parameters = {name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()}
        unknown = set(overrides or {}) - set(parameters)
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
        parameters.update(overrides or {})
        glob = (template.get("Globals") or {}).get("Function") or {}
        environment = dict(((glob.get("Environment") or {}).get("Variables")) or {})
        functions: dict[str, FunctionSpec] = {}
        machines: dict[str, StateMachineSpec] = {}
        tables: dict[str, dict[str, Any]] = {}
        buckets: list[str] = []
        secrets: dict[str, dict[str, Any]] = {}
        for logical_id, resource in (template.get("Resources") or {}).items():
            props = resource.get("Properties") or {}
            if resource.get("Type") == "AWS::DynamoDB::Table":
                tables[logical_id] = props
            elif resource.get("Type") == "AWS::SecretsManager::Secret":
                secrets[logical_id] = props
            elif resource.get("Type") == "AWS::S3::Bucket":
                buckets.append(logical_id)
            elif resource.get("Type") == "AWS::Serverless::Function":
                if (props.get("Environment") or {}).get("Variables"):
                    raise TemplateError(
                        f"{logical_id}: per-function environment variables are not supported by "
                        "the emulator; put them in Globals"
                    )
                functions[logical_id] = FunctionSpec(
                    logical_id,
                    root / str(props["CodeUri"]),
                    str(props.get("Handler") or glob.get("Handler") or "app.lambda_handler"),
                    int(props.get("Timeout") or glob.get("Timeout") or 3),
                )
            elif resource.get("Type") == "AWS::Serverless::StateMachine":
                patterns = {
                    name: (event.get("Properties") or {}).get("Pattern") or {}
                    for name, event in (props.get("Events") or {}).items()
                    if event.get("Type") in ("EventBridgeRule", "CloudWatchEvent")
                }
                machines[logical_id] = StateMachineSpec(
                    logical_id,
                    root / str(props["DefinitionUri"]),
                    dict(props.get("DefinitionSubstitutions") or {}),
                    patterns,
                )
        declared = template.get("Parameters") or {}
        lists = frozenset(n for n, spec in declared.items() if spec.get("Type") == "CommaDelimitedList")
        conditions = dict(template.get("Conditions") or {})
        return cls(root, parameters, environment, functions, machines, tables, buckets, secrets, conditions, lists)


@dataclass
class Resolver:
    """Resolves the intrinsic functions the emulator meets: Ref, GetAtt, Sub, Join, Split,
    and If with the template's Conditions (Equals, Not, And, Or, Condition)."""

    parameters: dict[str, str]
    pseudo: dict[str, str]
    attributes: dict[tuple[str, str], str]
    refs: dict[str, str]
    #: CommaDelimitedList parameters: `!Ref` gives their values as a list, as CloudFormation does.
    lists: frozenset[str] = frozenset()
    #: The template's `Conditions` section.
    conditions: dict[str, Any] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise TemplateError(f"unknown condition {name}")
        return self._truth(self.conditions[name])

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return bool(left == right)
            if key == "Fn::Not":
                return not self._truth(arg[0])
            if key == "Fn::And":
                return all(self._truth(a) for a in arg)
            if key == "Fn::Or":
                return any(self._truth(a) for a in arg)
            if key == "Condition":
                return self.condition(str(arg))
        raise TemplateError(f"cannot evaluate condition {value!r}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return None
                return self._ref(str(arg))
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(str(name)) else otherwise)
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(str(sep))
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                try:
                    return self.attributes[(parts[0], parts[1])]
                except KeyError as exc:
                    raise TemplateError(f"cannot resolve !GetAtt {'.'.join(parts)}") from exc
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                values = self.resolve(items)
                if isinstance(values, str):  # a CommaDelimitedList parameter kept as its text
                    values = [v.strip() for v in values.split(",")]
                return str(sep).join(str(v) for v in values)
        if isinstance(value, dict):
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not None or value[k] != {"Ref": "AWS::NoValue"}}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _ref(self, name: str) -> Any:
        if name in self.lists and name in self.parameters:
            return [v.strip() for v in str(self.parameters[name]).split(",")]
        for table in (self.parameters, self.pseudo, self.refs):
            if name in table:
                return table[name]
        raise TemplateError(f"cannot resolve !Ref {name}")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                logical, attr = name.split(".", 1)
                return str(self.resolve({"Fn::GetAtt": [logical, attr]}))
            return self._ref(name)

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text).replace("${!", "${")


def substitute_definition(text: str, substitutions: dict[str, str]) -> str:
    """Apply `DefinitionSubstitutions` as Step Functions does: `${Name}` → value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise TemplateError(f"definition uses ${{{name}}} but DefinitionSubstitutions has no {name}")
        return str(substitutions[name])

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, text)
