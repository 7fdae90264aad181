"""Cross-account cluster events: the bus policy admits the configured accounts' cluster
events and nothing else, the emulator's rule check applies it, and the forwarder template
sends exactly what the stack's rules listen to."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, Emulator
from atc_xaccount_cli.local.pattern import EventRefused
from atc_xaccount_cli.local.template import load_yaml
from tests.deploy.conftest import ROOT, deployed_resolver, resources_of

FORWARDER = ROOT / "bootstrap" / "event-forwarder.yaml"
CLUSTER_EVENTS = ["Cluster Registered", "Cluster Deregistered", "Rotate External ID"]


def _event(account: str, name: str = "cluster-registered.json") -> dict[str, Any]:
    event = json.loads((ROOT / "events" / name).read_text())
    event["account"] = account
    return event


def _emulator(**parameters: str) -> Emulator:
    """Only the template half of an emulator: routing needs no running moto."""
    return Emulator(ROOT, parameters=parameters)


def test_an_allowed_account_s_events_are_delivered():
    emulator = _emulator(EventSourceAccounts="111111111111,444444444444")
    assert emulator.route(_event("444444444444"))[0] == "OnboardStateMachine"
    assert emulator.route(_event("111111111111", "cluster-deregistered.json"))[0] == "OffboardStateMachine"


def test_another_account_s_events_are_refused_naming_the_parameter():
    emulator = _emulator(EventSourceAccounts="111111111111")
    with pytest.raises(EventRefused) as refused:
        emulator.route(_event("999999999999"))
    message = str(refused.value)
    assert "account 999999999999 may not put atc.cluster-manager/Cluster Registered events" in message
    assert "EventSourceAccounts" in message and "bootstrap/event-forwarder.yaml" in message


def test_without_source_accounts_only_the_automation_account_may_send():
    emulator = _emulator(EventSourceAccounts="")
    with pytest.raises(EventRefused):
        emulator.route(_event("111111111111"))
    assert emulator.route(_event(AUTOMATION_ACCOUNT))[0] == "OnboardStateMachine"


def test_an_organization_statement_admits_nobody_the_emulator_cannot_place():
    """aws:PrincipalOrgID is unknown on the emulator: the organization statement never matches."""
    emulator = _emulator(EventSourceAccounts="", EventSourceOrganizationId="o-abcdefghij")
    with pytest.raises(EventRefused):
        emulator.route(_event("111111111111"))


def test_the_sample_events_come_from_an_account_the_local_deployment_admits():
    emulator = _emulator()
    for name in ("cluster-registered.json", "cluster-deregistered.json", "cluster-registered-custom-names.json"):
        event = json.loads((ROOT / "events" / name).read_text())
        assert emulator.route(event) is not None


# --- the template ---------------------------------------------------------------------


def _policies(template: dict[str, Any], **parameters: str) -> dict[str, dict[str, Any]]:
    resolver = deployed_resolver(template)
    resolver.parameters.update(parameters)
    return {
        lid: resolver.resolve(res["Properties"]["Statement"])
        for lid, res in resources_of(template, "AWS::Events::EventBusPolicy").items()
    }


def test_the_bus_policies_admit_only_the_cluster_events_with_the_configured_source(template):
    rules = [
        event["Properties"]["Pattern"]
        for machine in resources_of(template, "AWS::Serverless::StateMachine").values()
        for event in (machine["Properties"].get("Events") or {}).values()
        if event["Type"] == "EventBridgeRule"
    ]
    assert sorted(t for r in rules for t in r["detail-type"]) == sorted(CLUSTER_EVENTS)
    policies = _policies(template)
    assert set(policies) == {"ClusterEventsFromAccountsPolicy", "ClusterEventsFromOrganizationPolicy"}
    for statement in policies.values():
        assert statement["Action"] == "events:PutEvents"
        assert statement["Resource"] == "arn:aws:events:us-east-1:123456789012:event-bus/default"
        scoped = statement["Condition"]["ForAllValues:StringEquals"]
        assert scoped == {"events:source": ["atc.cluster-manager"], "events:detail-type": CLUSTER_EVENTS}
    org = policies["ClusterEventsFromOrganizationPolicy"]
    assert org["Principal"] == "*" and set(org["Condition"]) == {"StringEquals", "ForAllValues:StringEquals"}
    assert org["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ""}


def test_each_bus_policy_exists_only_when_its_parameter_is_set(template):
    resources = resources_of(template, "AWS::Events::EventBusPolicy")
    conditions = template["Conditions"]
    assert resources["ClusterEventsFromAccountsPolicy"]["Condition"] == "HasEventSourceAccounts"
    assert resources["ClusterEventsFromOrganizationPolicy"]["Condition"] == "HasEventSourceOrganization"
    assert conditions["HasEventSourceAccounts"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "EventSourceAccounts"}]}, ""]}]
    }
    assert template["Parameters"]["EventSourceAccounts"]["Default"] == ""


# --- the forwarder in a cluster manager account ------------------------------------------


def test_the_forwarder_sends_exactly_what_the_stack_listens_to_and_may_do_nothing_else(template):
    forwarder = load_yaml(FORWARDER)
    rule = forwarder["Resources"]["ForwardClusterEventsRule"]["Properties"]
    assert rule["EventBusName"] == "default"
    assert rule["EventPattern"] == {"source": [{"Ref": "EventSource"}], "detail-type": CLUSTER_EVENTS}
    assert forwarder["Parameters"]["EventSource"]["Default"] == template["Parameters"]["EventSource"]["Default"]
    (target,) = rule["Targets"]
    bus = "arn:${AWS::Partition}:events:${AWS::Region}:${AutomationAccountId}:event-bus/${AutomationEventBusName}"
    assert target["Arn"] == {"Fn::Sub": bus}
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardClusterEventsRole", "Arn"]}
    role = forwarder["Resources"]["ForwardClusterEventsRole"]["Properties"]
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Sid": "PutClusterEvents", "Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::Sub": bus}}
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
