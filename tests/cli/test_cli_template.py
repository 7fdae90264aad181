"""Reading template.yaml as SAM would: functions, the state machine, its rule, its substitutions."""

from __future__ import annotations

import json
import re

import pytest

from atc_xaccount_cli.local.template import Resolver, SamApp, TemplateError, substitute_definition
from tests.cli.conftest import ROOT

FUNCTIONS = {
    "ValidateFunction",
    "PreflightFunction",
    "EnsureAssumePolicyFunction",
    "MergeTrustFunction",
    "VerifyFunction",
}


@pytest.fixture(scope="module")
def app() -> SamApp:
    return SamApp.load(ROOT)


def deployed_resolver(app: SamApp) -> Resolver:
    """What the emulator knows after creating the functions and state machines."""
    machines = {m: f"arn:aws:states:us-east-1:123456789012:stateMachine:{m}" for m in app.state_machines}
    return Resolver(
        parameters=app.parameters,
        pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"},
        attributes={(f, "Arn"): f"arn:aws:lambda:us-east-1:123456789012:function:{f}" for f in app.functions},
        refs={**{f: f for f in app.functions}, **machines},
    )


def test_template_declares_the_onboarding_step_functions_with_real_code(app):
    assert FUNCTIONS <= set(app.functions)
    for spec in app.functions.values():
        assert spec.handler == "app.lambda_handler"
        assert (spec.code_dir / "app.py").is_file(), spec.code_dir


def test_onboard_state_machine_and_its_rule(app):
    machine = app.state_machines["OnboardStateMachine"]

    assert machine.definition_path == ROOT / "statemachine" / "onboard.asl.json"
    assert {f"{f}Arn" for f in FUNCTIONS} <= set(machine.substitutions)
    assert machine.substitutions["PreflightFunctionArn"] == {"Fn::GetAtt": ["PreflightFunction", "Arn"]}
    assert machine.patterns["ClusterRegistered"] == {
        "source": [{"Ref": "EventSource"}],
        "detail-type": ["Cluster Registered"],
    }
    resolved = deployed_resolver(app).resolve(machine.patterns["ClusterRegistered"])
    assert resolved == {"source": ["atc.cluster-manager"], "detail-type": ["Cluster Registered"]}


def test_parameter_overrides_apply_and_unknown_ones_are_refused():
    app = SamApp.load(ROOT, {"EventSource": "acme.atc"})
    assert app.parameters["EventSource"] == "acme.atc"
    with pytest.raises(TemplateError, match="NoSuchParameter"):
        SamApp.load(ROOT, {"NoSuchParameter": "x"})


def test_the_real_onboard_definition_resolves_completely(app):
    machine = app.state_machines["OnboardStateMachine"]
    resolver = deployed_resolver(app)
    substitutions = {k: str(resolver.resolve(v)) for k, v in machine.substitutions.items()}

    definition = substitute_definition(machine.definition_path.read_text(encoding="utf-8"), substitutions)

    assert "${" not in definition
    states = json.loads(definition)["States"]
    assert states["Preflight"]["Resource"] == "arn:aws:lambda:us-east-1:123456789012:function:PreflightFunction"


def test_every_state_machine_uses_exactly_the_substitutions_it_defines(app):
    resolver = deployed_resolver(app)
    for logical_id, machine in app.state_machines.items():
        text = machine.definition_path.read_text(encoding="utf-8")
        substitutions = {k: str(resolver.resolve(v)) for k, v in machine.substitutions.items()}

        used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
        assert used == set(substitutions), f"{logical_id}: every name used is defined and every defined one is used"
        assert "${" not in substitute_definition(text, substitutions), logical_id
        json.loads(substitute_definition(text, substitutions))


def test_substitute_definition_replaces_names_and_refuses_unknown_ones():
    assert substitute_definition('{"Resource": "${A}", "B": "${B}"}', {"A": "x", "B": "y"}) == (
        '{"Resource": "x", "B": "y"}'
    )
    with pytest.raises(TemplateError, match="Missing"):
        substitute_definition('{"Resource": "${Missing}"}', {"A": "x"})


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        parameters={"AutomationRoleName": "atc-xaccount-automation"},
        pseudo={"AWS::Partition": "aws-cn", "AWS::Region": "cn-north-1", "AWS::AccountId": "123456789012"},
        attributes={("VerifyFunction", "Arn"): "arn:aws-cn:lambda:cn-north-1:123456789012:function:Verify"},
        refs={"VerifyFunction": "Verify"},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "AutomationRoleName"}, "atc-xaccount-automation"),
        ({"Ref": "AWS::Partition"}, "aws-cn"),
        ({"Ref": "VerifyFunction"}, "Verify"),
        ({"Fn::GetAtt": ["VerifyFunction", "Arn"]}, "arn:aws-cn:lambda:cn-north-1:123456789012:function:Verify"),
        ({"Fn::GetAtt": "VerifyFunction.Arn"}, "arn:aws-cn:lambda:cn-north-1:123456789012:function:Verify"),
        (
            {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${AutomationRoleName}"},
            "arn:aws-cn:iam::*:role/atc-xaccount-automation",
        ),
        ({"Fn::Sub": "${VerifyFunction.Arn}:live"}, "arn:aws-cn:lambda:cn-north-1:123456789012:function:Verify:live"),
        ({"Fn::Sub": ["${Name}-${AWS::Region}", {"Name": {"Ref": "VerifyFunction"}}]}, "Verify-cn-north-1"),
        ({"Fn::Join": ["/", ["a", {"Ref": "AWS::AccountId"}]]}, "a/123456789012"),
        ({"Outer": [{"Ref": "AWS::Partition"}, "plain"]}, {"Outer": ["aws-cn", "plain"]}),
    ],
)
def test_resolver_resolves_intrinsics(resolver, value, expected):
    assert resolver.resolve(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Nope"},
        {"Fn::GetAtt": ["Nope", "Arn"]},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${Nope}:root"},
        {"Fn::Sub": "${Nope.Arn}"},
    ],
)
def test_resolver_refuses_what_it_cannot_resolve(resolver, value):
    with pytest.raises(TemplateError, match="Nope"):
        resolver.resolve(value)


def test_sub_escape_renders_a_literal_placeholder(resolver):
    assert resolver.resolve({"Fn::Sub": "${!Literal}-${AWS::Partition}"}) == "${Literal}-aws-cn"
