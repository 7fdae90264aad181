"""The emulator counts the metrics handlers add and prints none of them (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atc_xaccount_cli.local.dispatch import CallLedger, Dispatcher, emitted_metrics
from atc_xaccount_cli.local.template import FunctionSpec

# The emulator filters this one too: with metrics counted, Powertools finds nothing to flush.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

HANDLER = """
from aws_lambda_powertools import Metrics

metrics = Metrics(namespace="AtcXaccountTest", service="metrics-test")


@metrics.log_metrics
def lambda_handler(event, context):
    metrics.add_metric(name="Widgets", unit=event.get("unit", "Count"), value=1)
    return {"ok": True}
"""


@pytest.fixture
def dispatcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dispatcher:
    (tmp_path / "app.py").write_text(HANDLER, encoding="utf-8")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    spec = FunctionSpec("MetricsFunction", tmp_path, "app.lambda_handler")
    return Dispatcher({"MetricsFunction": spec}, CallLedger())


def test_metrics_of_many_invocations_are_counted_not_printed(
    dispatcher: Dispatcher, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emitted_metrics().get("Widgets", 0)
    with dispatcher.installed():
        # Powertools prints its whole metric set as EMF JSON once a metric holds 100 values.
        for _ in range(250):
            headers: dict[str, str] = {}
            assert json.loads(dispatcher.invoke("MetricsFunction", b"{}", headers)) == {"ok": True}
            assert headers == {}
    out = capsys.readouterr().out
    assert "_aws" not in out and "Widgets" not in out
    assert dispatcher.ledger.metrics == {"Widgets": 250}
    assert emitted_metrics()["Widgets"] - before == 250


def test_a_bad_metric_still_fails_the_step_as_powertools_would(dispatcher: Dispatcher) -> None:
    with dispatcher.installed():
        headers: dict[str, str] = {}
        error = json.loads(dispatcher.invoke("MetricsFunction", json.dumps({"unit": "Furlongs"}).encode(), headers))
    assert headers["x-amz-function-error"] == "Unhandled"
    assert error["errorType"] == "MetricUnitError"
    assert dispatcher.ledger.metrics == {}
