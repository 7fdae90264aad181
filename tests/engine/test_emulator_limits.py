"""The emulator enforces Step Functions' payload and history quotas (moto has neither as a setting)."""

from __future__ import annotations

from atc_xaccount_cli.local.limits import HISTORY_EVENTS, PAYLOAD_BYTES
from tests.engine.conftest import onboard


def test_the_defaults_are_aws_quotas():
    assert (PAYLOAD_BYTES, HISTORY_EVENTS) == (262_144, 25_000)


def test_a_state_payload_over_the_limit_fails_the_execution_with_data_limit_exceeded(sample_world, registered_event):
    report = onboard(registered_event, sample_world, payload_limit=600, prove=False)

    assert report.result.status == "FAILED"
    assert report.result.error == "States.DataLimitExceeded"
    assert report.largest_payload > 600


def test_an_execution_over_the_history_limit_fails(sample_world, registered_event):
    report = onboard(registered_event, sample_world, history_limit=12, prove=False)

    assert report.result.status == "FAILED"
    assert report.result.error == "States.Runtime"
    assert "maximum execution history size of 12 events" in (report.result.cause or "")


def test_an_onboarding_records_its_largest_payload_and_history(sample_world, registered_event):
    report = onboard(registered_event, sample_world, prove=False)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert 1_000 < report.largest_payload < PAYLOAD_BYTES
    assert 20 < report.largest_history < HISTORY_EVENTS
