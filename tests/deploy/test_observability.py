"""Alarms, the alert topic and the dashboard watch what the code really emits.

A renamed EMF metric, a new state machine or step without an alarm or a dashboard line,
or an alarm that notifies nobody would go unnoticed until the day it matters.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from tests.deploy.conftest import ROOT, deployed_resolver, resources_of

#: What the dashboard must show (issue 4, item 4) besides the executions and the queues.
DASHBOARD_EMF = {
    "ClusterOnboarded",
    "ClusterRevoked",
    "ExecutionCompensated",
    "DriftDetected",
    "AssumePolicyWrites",
    "TrustPolicyWrites",
}


def emitted_metrics() -> dict[str, set[str]]:
    """EMF metric name -> handlers emitting it, read from functions/*/app.py."""
    emitted: dict[str, set[str]] = {}
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        for node in ast.walk(ast.parse(app.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute | ast.Name):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            names: list[ast.expr] = []
            if called == "add_metric":
                names = [kw.value for kw in node.keywords if kw.arg == "name"]
            elif called == "count_change" and len(node.args) >= 3:
                names = [node.args[2]]
            for name in names:
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    emitted.setdefault(name.value, set()).add(app.parent.name)
    return emitted


def environment(template: dict[str, Any]) -> dict[str, Any]:
    return template["Globals"]["Function"]["Environment"]["Variables"]


def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    (props,) = [r["Properties"] for r in resources_of(template, "AWS::CloudWatch::Dashboard").values()]
    return json.loads(deployed_resolver(template).resolve(props["DashboardBody"]))


def dashboard_metrics(template: dict[str, Any]) -> list[list[Any]]:
    """Each metric line as [namespace, name, dimension, value, ...] without its options."""
    lines = []
    for widget in dashboard(template)["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            lines.append([part for part in line if not isinstance(part, dict)])
    return lines


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: res["Properties"] for lid, res in resources_of(template, "AWS::CloudWatch::Alarm").items()}


def test_powertools_emits_the_namespace_and_service_dimension_the_alarms_use(template):
    env = environment(template)
    provider = AmazonCloudWatchEMFProvider(
        namespace=env["POWERTOOLS_METRICS_NAMESPACE"], service=env["POWERTOOLS_SERVICE_NAME"]
    )
    provider.add_metric(name="DriftDetected", unit=MetricUnit.Count, value=1)
    blob = provider.serialize_metric_set()

    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    (drift,) = [a for a in alarms(template).values() if a.get("MetricName") == "DriftDetected"]
    assert drift["Namespace"] == directive["Namespace"] == "AtcXaccount"
    assert directive["Dimensions"] == [[d["Name"] for d in drift["Dimensions"]]] == [["service"]]
    assert [d["Value"] for d in drift["Dimensions"]] == [blob["service"]] == ["atc-xaccount"]


def test_every_emf_metric_the_template_watches_is_emitted_by_a_handler(template):
    env = environment(template)
    watched = {a["MetricName"] for a in alarms(template).values() if a["Namespace"] == "AtcXaccount"}
    shown = set()
    for line in dashboard_metrics(template):
        if line[0] == env["POWERTOOLS_METRICS_NAMESPACE"]:
            assert line[2:] == ["service", env["POWERTOOLS_SERVICE_NAME"]], line
            shown.add(line[1])
    assert DASHBOARD_EMF <= shown
    filtered = {
        t["MetricName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Logs::MetricFilter"
        for t in r["Properties"]["MetricTransformations"]
        if t["MetricNamespace"] == "AtcXaccount"
    }
    assert watched | shown <= set(emitted_metrics()) | filtered, "a watched metric nothing emits"


def test_the_lost_ready_event_metric_counts_the_state_the_onboarding_enters():
    """ReadyEventLost comes from the onboarding's own log: the name of the state it enters."""
    definition = json.loads((ROOT / "statemachine" / "onboard.asl.json").read_text(encoding="utf-8"))
    assert definition["States"]["ReadyNotPublished"]["Type"] == "Pass"
    assert definition["States"]["PublishReady"]["Catch"][0]["Next"] == "ReadyNotPublished"


def test_the_drift_metric_comes_from_the_audit_step():
    assert emitted_metrics()["DriftDetected"] == {"audit_cluster"}


def test_every_state_machine_has_a_failed_executions_alarm_and_its_dashboard_line(template):
    machines = set(resources_of(template, "AWS::Serverless::StateMachine"))
    failed = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in alarms(template).values()
        if (a["Namespace"], a["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    }
    assert (
        failed
        == machines
        == {
            "OnboardStateMachine",
            "OffboardStateMachine",
            "AuditStateMachine",
            "BulkStateMachine",
            "RotateStateMachine",
        }
    )
    arn = deployed_resolver(template).refs
    lines = dashboard_metrics(template)
    for machine in machines:
        for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"):
            assert ["AWS/States", metric, "StateMachineArn", arn[machine]] in lines, (machine, metric)


def test_every_rules_dead_letter_queue_has_an_alarm_and_its_dashboard_line(template):
    queues = {
        event["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        for machine in resources_of(template, "AWS::Serverless::StateMachine").values()
        for event in (machine["Properties"].get("Events") or {}).values()
        if "DeadLetterConfig" in event.get("Properties", {})
    }
    for queue in queues:
        # Queues of our own: SAM's generated ones keep messages 4 days; 14 days here.
        assert template["Resources"][queue]["Properties"]["MessageRetentionPeriod"] == 1209600
    alarmed = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms(template).values()
        if (a["Namespace"], a["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    }
    assert (
        alarmed
        == queues
        == {
            "OnboardStateMachineClusterRegisteredDLQ",
            "OffboardStateMachineClusterDeregisteredDLQ",
            "RotateStateMachineRotateExternalIdDLQ",
        }
    )
    for alarm in alarms(template).values():
        if alarm["Namespace"] == "AWS/SQS":
            assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    lines = dashboard_metrics(template)
    for queue in queues:
        assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue] in lines


def test_every_step_function_has_its_errors_on_the_dashboard(template):
    names = deployed_resolver(template).refs
    lines = dashboard_metrics(template)
    for function in resources_of(template, "AWS::Serverless::Function"):
        assert ["AWS/Lambda", "Errors", "FunctionName", names[function]] in lines, function


def test_every_alarm_notifies_the_topic_and_is_on_the_dashboard(template):
    (topic,) = resources_of(template, "AWS::SNS::Topic")
    (widget,) = [w for w in dashboard(template)["widgets"] if w["type"] == "alarm"]
    attributes = deployed_resolver(template).attributes
    for lid, alarm in alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], lid
        assert alarm["TreatMissingData"] == "notBreaching", lid
        assert attributes[(lid, "Arn")] in widget["properties"]["alarms"], lid


def test_the_alert_topic_uses_a_key_cloudwatch_may_use(template):
    """Alarms cannot publish to a topic under alias/aws/sns: its key policy leaves out CloudWatch."""
    ((topic_id, topic),) = resources_of(template, "AWS::SNS::Topic").items()
    key_ref = topic["Properties"]["KmsMasterKeyId"]
    assert key_ref != "alias/aws/sns"
    key = template["Resources"][key_ref["Ref"]]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert [sorted(s["Action"]) for s in cloudwatch] == [["kms:Decrypt", "kms:GenerateDataKey"]]
    (policy,) = resources_of(template, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]


def evaluate(condition: Any, parameters: dict[str, str]) -> Any:
    """Fn::Not, Fn::Equals and Ref, as CloudFormation evaluates a condition."""
    if isinstance(condition, dict):
        ((key, arg),) = condition.items()
        if key == "Ref":
            return parameters[arg]
        if key == "Fn::Equals":
            return evaluate(arg[0], parameters) == evaluate(arg[1], parameters)
        if key == "Fn::Not":
            return not evaluate(arg[0], parameters)
        raise AssertionError(f"unexpected {key}")
    return condition


@pytest.mark.parametrize(("email", "subscribed"), [("", False), ("oncall@example.com", True)])
def test_the_email_subscription_exists_only_with_an_address(template, email, subscribed):
    (subscription,) = resources_of(template, "AWS::SNS::Subscription").values()
    condition = template["Conditions"][subscription["Condition"]]
    assert evaluate(condition, {"AlertEmail": email}) is subscribed
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlertTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlertEmail"},
    }
    assert template["Parameters"]["AlertEmail"]["Default"] == ""


def test_every_log_group_is_encrypted_with_the_stack_key(template):
    """One log group per function and per state machine, each with the stack's key."""
    groups = resources_of(template, "AWS::Logs::LogGroup")
    functions = resources_of(template, "AWS::Serverless::Function")
    machines = resources_of(template, "AWS::Serverless::StateMachine")
    assert len(groups) == len(functions) + len(machines)
    for lid, fn in functions.items():
        assert fn["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": f"{lid}LogGroup"}, lid
    for lid, machine in machines.items():
        (destination,) = machine["Properties"]["Logging"]["Destinations"]
        assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": [f"{lid}LogGroup", "Arn"]}, lid
    for lid, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["MonitoringKey", "Arn"]}, lid


def test_checkov_suppressions_carry_a_reason(template):
    """.checkov.yaml documents its skips in comments; a resource's skip needs a comment."""
    for lid, res in template["Resources"].items():
        for skip in (res.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "").split()) >= 8, (lid, skip["id"])
    config = (ROOT / ".checkov.yaml").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(config):
        if line.strip().startswith("- CKV_"):
            assert config[index - 1].strip().startswith("#"), line


def test_dashboard_widgets_fit_the_grid(template):
    for widget in dashboard(template)["widgets"]:
        assert widget["x"] + widget["width"] <= 24, widget
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "us-east-1"


def test_the_audit_schedule_has_a_stack_unique_name(template):
    """Without a Name, a second stack in the same account and region collides with the first."""
    (audit,) = [
        m for k, m in resources_of(template, "AWS::Serverless::StateMachine").items() if k == "AuditStateMachine"
    ]
    schedule = audit["Properties"]["Events"]["Schedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert "${AWS::StackName}" in schedule["Properties"]["Name"]["Fn::Sub"]
