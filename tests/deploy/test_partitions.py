"""The stack deploys in every partition: `aws`, `aws-cn`, `aws-us-gov` (issue 16 item 7).

`template.yaml` is translated by aws-sam-translator (what `sam deploy` submits) with a
session in a region of each partition, its pseudo parameters resolved for that
partition, and every string of the result and of every state machine's definition (its
`DefinitionSubstitutions` applied) is checked: no ARN of another partition, and a
regional service principal or endpoint ends with the partition's URL suffix
(`amazonaws.com.cn` in China).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from atc_xaccount_cli.local.step_roles import translate
from tests.deploy.conftest import PARTITIONS, ROOT

URL_SUFFIX = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}
ARN = re.compile(r"arn:(aws[a-z-]*):")
#: A regional host or service principal: `<service>.<region>.amazonaws.com[.cn]`.
REGIONAL = re.compile(r"\b[a-z0-9-]+\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.(amazonaws\.com(?:\.cn)?)\b")


def _pseudo(partition: str, region: str) -> dict[str, str]:
    return {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::URLSuffix": URL_SUFFIX[partition],
        "AWS::AccountId": "123456789012",
        "AWS::StackName": "atc-xaccount",
    }


def _resolve(value: Any, pseudo: dict[str, str]) -> Any:
    """Pseudo parameters resolved; any other reference left as a `<Ref ...>` placeholder."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return pseudo.get(str(arg), f"<Ref {arg}>")
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            resolved = {k: _resolve(v, pseudo) for k, v in variables.items()}

            def replace(match: re.Match[str]) -> str:
                name = match.group(1)
                found = resolved.get(name, pseudo.get(name, f"<{name}>"))
                return found if isinstance(found, str) else f"<{name}>"

            return re.sub(r"\$\{([^!}][^}]*)\}", replace, text)
        if key == "Fn::Join":
            sep, items = arg
            parts = [_resolve(i, pseudo) for i in items] if isinstance(items, list) else []
            return str(sep).join(p if isinstance(p, str) else "<value>" for p in parts)
    if isinstance(value, dict):
        return {k: _resolve(v, pseudo) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, pseudo) for v in value]
    return value


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def _problems(strings: Iterator[tuple[str, str]], partition: str) -> list[str]:
    found = []
    for where, text in strings:
        for arn in ARN.finditer(text):
            if arn.group(1) != partition:
                found.append(f"{where}: {arn.group(0)} in {text[:120]!r}")
        for host in REGIONAL.finditer(text):
            if host.group(2) != URL_SUFFIX[partition]:
                found.append(f"{where}: {host.group(0)} (the URL suffix here is {URL_SUFFIX[partition]})")
    return found


@pytest.fixture(scope="module")
def sam_template() -> dict[str, Any]:
    from atc_xaccount_cli.local.template import load_yaml

    return load_yaml(ROOT / "template.yaml")


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=[p for p, _ in PARTITIONS])
def test_the_translated_template_names_only_its_partition(sam_template, partition, region):
    parameters = {n: str(s.get("Default", "")) for n, s in sam_template["Parameters"].items()}
    translated = translate(sam_template, parameters, region)

    resolved = _resolve(translated["Resources"], _pseudo(partition, region))

    assert _problems(_strings(resolved, "Resources"), partition) == []


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=[p for p, _ in PARTITIONS])
def test_every_state_machine_definition_names_only_its_partition(sam_template, partition, region):
    from atc_xaccount_cli.local.template import substitute_definition

    pseudo = _pseudo(partition, region)
    machines = {
        lid: res["Properties"]
        for lid, res in sam_template["Resources"].items()
        if res["Type"] == "AWS::Serverless::StateMachine"
    }
    assert len(machines) == 5  # onboard, offboard, rotate, audit, bulk
    for logical_id, props in machines.items():
        substitutions = {k: _resolve(v, pseudo) for k, v in props["DefinitionSubstitutions"].items()}
        # Function and state machine ARNs are the stack's own (built in its partition by CloudFormation).
        values = {k: v if isinstance(v, str) and not v.startswith("<") else f"<{k}>" for k, v in substitutions.items()}
        text = substitute_definition((ROOT / props["DefinitionUri"]).read_text(encoding="utf-8"), values)
        definition = json.loads(text)

        assert _problems(_strings(definition, logical_id), partition) == [], logical_id
        resources = [s for w, s in _strings(definition) if w.endswith(".Resource") and s.startswith("arn:")]
        assert resources, f"{logical_id} uses service integrations"
        assert all(r.startswith(f"arn:{partition}:states:::") for r in resources), resources
