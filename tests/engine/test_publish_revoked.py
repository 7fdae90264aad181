"""A lost Revoked event does not fail an offboarding whose work is done (issue 16 item 6).

Like PublishReady: the access is revoked (or there was none) by the time the event is put
on the bus, so after its retries the execution ends SUCCEEDED with
`revokedEventPublished: false`, and a metric filter on the state it enters raises
RevokedEventLostAlarm. Before, the offboarding ended FAILED after the revocation.
"""

from __future__ import annotations

import copy
import json
import re

from atc_xaccount_cli.local.faults import FaultPlan
from tests.engine.conftest import ROOT, load, onboard, without_secrets

REVOKED = "Cluster S3 Access Revoked"


def test_a_revoked_event_lost_after_every_retry_still_ends_succeeded(sample_world, registered_event):
    registered = onboard(registered_event, copy.deepcopy(sample_world), prove=False)
    assert registered.result.status == "SUCCEEDED", registered.cause_message
    faults = FaultPlan(["PublishRevoked/events:PutEvents=fail"], seed=1)

    report = onboard(load("cluster-deregistered.json"), registered.world, faults=faults, prove=False)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert len(report.faults) == 4, "the first attempt and three retries"
    assert report.result.output["revokedEventPublished"] is False
    assert "RevokedNotPublished" in [s.name for s in report.result.states]
    assert [e for e in report.events if e["detail-type"] == REVOKED] == []
    targets = {a: s for a, s in without_secrets(report.world).items() if a != "123456789012"}
    assert targets == {a: s for a, s in without_secrets(sample_world).items() if a != "123456789012"}


def test_a_nothing_to_do_event_lost_still_ends_succeeded(sample_world):
    faults = FaultPlan(["PublishNothingToDo/events:PutEvents=fail"], seed=1)

    report = onboard(load("cluster-deregistered.json"), copy.deepcopy(sample_world), faults=faults, prove=False)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert report.result.output == {
        "clusterId": "demo-cluster-1",
        "nothingToDo": True,
        "reason": "never registered",
        "revokedEventPublished": False,
    }


def test_the_lost_revoked_event_metric_counts_the_states_the_offboarding_enters():
    from atc_xaccount_cli.local.template import load_yaml

    definition = json.loads((ROOT / "statemachine" / "offboard.asl.json").read_text(encoding="utf-8"))
    template = load_yaml(ROOT / "template.yaml")["Resources"]
    pattern = template["RevokedEventLostMetricFilter"]["Properties"]["FilterPattern"]
    lost = set(re.findall(r'\$\.details\.name = "(\w+)"', pattern))
    assert lost == {"RevokedNotPublished", "NothingToDoNotPublished"}
    for state in lost:
        assert definition["States"][state]["Type"] == "Pass"
    assert {
        c["Next"] for name in ("PublishRevoked", "PublishNothingToDo") for c in definition["States"][name]["Catch"]
    } == lost
    assert template["RevokedEventLostAlarm"]["Properties"]["MetricName"] == "RevokedEventLost"
