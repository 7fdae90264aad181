"""Bulk onboarding at scale, small: the bench's own code path (bench/bulk.py), many accounts."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from atc_xaccount_cli.local.run import run_bulk
from bench import bulk
from tests.engine.conftest import ROOT


def test_every_row_is_reported_and_no_grant_is_lost():
    # 12 rows, not 20: each row waits on the locks of the rows sharing its roles; 20 take ~30 s here.
    result = bulk.measure(ROOT, 12, s3_accounts=4, cm_accounts=3)

    assert result["status"] == "SUCCEEDED", result["cause"]
    assert result["reported_rows"] == result["rows"] == 12
    assert result["unreported"] == []
    assert sum(result["status_counts"].values()) == 12
    assert result["succeeded"] == 12, result["first_cause_by_error"]
    assert result["lost_grants"] == 0
    assert result["grants_missing"] == 0
    assert result["secret_mismatch"] == 0, "the stored external ID is the row's"
    assert result["transitions"]["onboard_executions"] == 12
    assert result["calls"]["total"] > 0


def test_the_generated_world_spreads_clusters_round_robin():
    generated = bulk.plan(500, 50, 10)
    rows = generated["rows"]
    assert len({r["clusterId"] for r in rows}) == 500
    assert set(Counter(r["s3AccountId"] for r in rows).values()) == {10}
    assert set(Counter(r["clusterManagerAccountId"] for r in rows).values()) == {50}
    # Every access role grants 10 different node roles: ~2,500 characters, over IAM's default 2,048.
    assert {
        len({r["clusterManagerAccountId"] for r in rows if r["s3AccountId"] == a})
        for a in generated["world"]["accounts"]
        if a.startswith(bulk.S3_PREFIX)
    } == {10}
    assert 2048 < generated["trust_policy_size_predicted_max"] <= 4096
    assert generated["trust_quota"] == 4096
    assert all(len(r["externalId"]) == 32 for r in rows)
    assert bulk.plan(500, 50, 10) == generated, "deterministic"


def test_a_failed_row_is_written_small_by_the_result_writer(tmp_path):
    """A failed row keeps the onboarding's error and message, not its whole DescribeExecution.

    The whole Cause (input with the row's externalId, Lambda stack trace) is over 1.3 KB a
    row. The Map writes each row's result to S3 (ResultWriter, AWS's file layout); its own
    output is only where.
    """
    generated = bulk.plan(2, 2, 1)
    missing = next(a for a in generated["world"]["accounts"] if a.startswith(bulk.S3_PREFIX))
    generated["world"]["accounts"][missing]["roles"] = {}
    path = bulk.write_registrations(generated["rows"], tmp_path / "rows.jsonl")
    seen: dict[str, Any] = {}

    def on_finish(emulator, result):
        sfn, s3 = emulator.client("stepfunctions"), emulator.client("s3")
        for event in sfn.get_execution_history(executionArn=result.arn, maxResults=1000)["events"]:
            details = event.get("stateExitedEventDetails") or {}
            if details.get("name") == "OnboardEach":
                seen.update(json.loads(details["output"]))
        where = seen["onboarded"]["ResultWriterDetails"]
        manifest = json.loads(s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read())
        seen["manifest"] = manifest
        seen["results"] = [
            entry
            for f in manifest["ResultFiles"]["SUCCEEDED"]
            for entry in json.loads(s3.get_object(Bucket=where["Bucket"], Key=f["Key"])["Body"].read())
        ]

    report = run_bulk(ROOT, path, generated["world"], parameters=generated["parameters"], on_finish=on_finish)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert set(seen["onboarded"]) == {"MapRunArn", "ResultWriterDetails"}
    assert seen["manifest"]["ResultFiles"]["FAILED"] == []
    assert [f["Key"].rsplit("/", 1)[-1] for f in seen["manifest"]["ResultFiles"]["SUCCEEDED"]] == ["SUCCEEDED_0.json"]
    outputs = [json.loads(e["Output"]) for e in seen["results"]]
    assert {e["Status"] for e in seen["results"]} == {"SUCCEEDED"} and len(outputs) == 2
    failed = [o for o in outputs if o["status"] == "FAILED"]
    assert len(failed) == 1
    assert failed[0]["cause"]["error"] == "PrerequisiteMissing"
    assert missing in failed[0]["cause"]["cause"]
    assert len(json.dumps(failed[0])) < 300
    rows = {r["status"]: r for r in report.executions[0].bulk_report["rows"]}
    assert rows["FAILED"]["cause"].startswith("PrerequisiteMissing: role atc-s3-access-keys does not exist")
    assert "onboarded" not in report.result.output, "the Map's results are not in the output"
