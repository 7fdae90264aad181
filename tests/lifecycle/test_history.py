"""No external ID in execution history or files (issue 15 item 8): an ID an event gives is
moved into the cluster's secret by Validate (bulk rows: by Prepare), and only its keyed
fingerprint travels through the state machines, the items file and the ResultWriter files."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atc_xaccount_cli.local.run import RunReport, run_bulk
from tests.lifecycle.conftest import (
    FIRST,
    ROOT,
    admits,
    external_id,
    fingerprints_of,
    registration,
    registry_of,
    run,
)

CHOSEN = "Operator-Chosen-ID-4711"
REPLACEMENT = "Replacement-ID-0815"


def delivered(event: dict[str, Any]) -> bool:
    """Where Step Functions records the execution's input as EventBridge delivered it: the
    execution's start, and Validate's own input (its task parameters are the event)."""
    details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
    if event["type"] == "ExecutionStarted":
        return True
    entered = details.get("stateEnteredEventDetails") or {}
    if event["type"] == "TaskStateEntered" and entered.get("name") == "Validate":
        return True
    scheduled = details.get("lambdaFunctionScheduledEventDetails") or {}
    return event["type"] == "LambdaFunctionScheduled" and '"detailType"' in str(scheduled.get("input"))


def leaks(report: RunReport, secret: str) -> list[dict[str, Any]]:
    """Every history event, after the delivered input, that holds `secret` in clear."""
    return [
        e for x in report.executions for e in x.to_json()["history"] if secret in json.dumps(e) and not delivered(e)
    ]


@pytest.fixture(scope="module")
def chosen(sample_world) -> RunReport:
    report = run([registration(FIRST, externalId=CHOSEN)], sample_world)
    assert report.result.status == "SUCCEEDED", report.cause_message
    return report


def test_the_history_of_a_run_with_an_explicit_external_id_holds_no_plaintext_id(chosen):
    history = chosen.executions[0].to_json()["history"]

    assert history, "local run --json records the execution history"
    assert any(e["type"] == "TaskStateExited" for e in history)
    assert leaks(chosen, CHOSEN) == []
    # What EventBridge delivered is the execution's input, recorded as such (docs/authorization.md).
    assert [e["type"] for e in history if CHOSEN in json.dumps(e)] == [
        "ExecutionStarted",
        "TaskStateEntered",
        "LambdaFunctionScheduled",
    ]
    assert CHOSEN not in json.dumps(chosen.result.output) and CHOSEN not in json.dumps(chosen.events)
    # Only the keyed fingerprint travelled, and the ID is the cluster's.
    fingerprint = fingerprints_of(chosen.world).of(CHOSEN)
    assert fingerprint in json.dumps(history)
    assert external_id(chosen.world, FIRST) == CHOSEN and admits(chosen.world, CHOSEN)
    assert registry_of(chosen.world)[FIRST]["externalIdFingerprint"] == fingerprint


def test_a_new_id_is_granted_then_promoted_and_a_failed_grant_keeps_the_old_one(chosen):
    failed = run(
        [registration(FIRST, externalId=REPLACEMENT)],
        chosen.world,
        faults=["MergeTrust/iam:UpdateAssumeRolePolicy=fail"],
    )
    replaced = run([registration(FIRST, externalId=REPLACEMENT)], chosen.world)

    assert failed.result.status == "FAILED"
    assert external_id(failed.world, FIRST) == CHOSEN, "the secret still holds the ID the trust grants"
    assert admits(failed.world, CHOSEN) and not admits(failed.world, REPLACEMENT)
    assert registry_of(failed.world)[FIRST]["externalIdFingerprint"] == fingerprints_of(chosen.world).of(CHOSEN)
    assert leaks(failed, REPLACEMENT) == []
    assert replaced.result.status == "SUCCEEDED", replaced.cause_message
    assert external_id(replaced.world, FIRST) == REPLACEMENT
    assert admits(replaced.world, REPLACEMENT) and not admits(replaced.world, CHOSEN), "the old ID is withdrawn"
    assert leaks(replaced, REPLACEMENT) == [] and leaks(replaced, CHOSEN) == []


def test_bulk_items_and_result_files_carry_no_external_id(tmp_path, sample_world):
    ids = {f"bulk-id-{n}": f"Bulk-Chosen-ID-{n}-{'x' * 8}" for n in (1, 2)}
    rows = [
        {
            "clusterId": cluster,
            "clusterManagerAccountId": "111111111111",
            "s3AccountId": "222222222222",
            "externalId": i,
        }
        for cluster, i in ids.items()
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    files: dict[str, str] = {}

    def on_finish(emulator: Any, result: Any) -> None:
        s3, bucket = emulator.client("s3"), emulator.buckets["BulkBucket"]
        for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            if listed["Key"] != "uploads/rows.jsonl":  # the operator's own file
                files[listed["Key"]] = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read().decode()

    report = run_bulk(ROOT, path, sample_world, on_finish=on_finish)

    assert report.executions[0].bulk_report["counts"] == {"SUCCEEDED": 2}, json.dumps(
        report.executions[0].bulk_report, default=str
    )[:3000]
    assert any(k.endswith(".items.json") for k in files) and any(k.startswith("results/") for k in files)
    for key, text in files.items():
        for value in ids.values():
            assert value not in text, key
    assert not [e for value in ids.values() for e in leaks(report, value)]
    for cluster, value in ids.items():
        assert external_id(report.world, cluster) == value and admits(report.world, value)
