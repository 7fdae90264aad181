"""A lost Ready event does not fail an onboarding whose access exists and is recorded."""

from __future__ import annotations

from atc_xaccount_cli.local.faults import FaultPlan
from tests.engine.conftest import onboard, trust_of

READY = "Cluster S3 Access Ready"


def test_a_put_events_failure_is_retried_and_the_event_published(sample_world, registered_event):
    faults = FaultPlan(["PublishReady/events:PutEvents=fail:1:2"], seed=1)
    report = onboard(registered_event, sample_world, faults=faults)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert [f["step"] for f in report.faults] == ["PublishReady", "PublishReady"]
    assert [e["detail-type"] for e in report.events] == [READY]
    assert report.result.output["readyEventPublished"] is True


def test_a_ready_event_lost_after_every_retry_still_ends_succeeded_with_access(sample_world, registered_event):
    faults = FaultPlan(["PublishReady/events:PutEvents=fail"], seed=1)
    report = onboard(registered_event, sample_world, faults=faults)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert len(report.faults) == 7, "the first attempt and six retries"
    assert report.events == [], "no Ready (and no Failed) event: the bus refused every put"
    assert report.result.output["readyEventPublished"] is False
    assert "ReadyNotPublished" in [s.name for s in report.result.states]
    assert report.proof is not None and report.proof.ok, "access exists"
    assert len(trust_of(report.world)["Statement"]) == len(trust_of(sample_world)["Statement"]) + 1
