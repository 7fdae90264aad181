"""Bulk onboarding through the real bulk and onboarding state machines."""

from __future__ import annotations

import json
from pathlib import Path

from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.trust import grant_external_ids
from atc_xaccount_cli.local.run import run_bulk
from tests.engine.conftest import CM, ROOT, trust_of

NODE = f"arn:aws:iam::{CM}:role/atc-node"


def test_a_bad_row_is_reported_by_line_and_the_others_are_onboarded(sample_world):
    report = run_bulk(ROOT, ROOT / "events" / "bulk-registrations.csv", sample_world)

    assert report.succeeded
    bulk = report.executions[0].bulk_report
    assert report.result.output["report"]["counts"] == bulk["counts"]
    assert bulk["counts"] == {"SUCCEEDED": 4, "REJECTED": 1}
    rejected = [r for r in bulk["rows"] if r["status"] == "REJECTED"]
    assert [(r["line"], "detail.s3AccountId" in r["cause"]) for r in rejected] == [(4, True)]

    secrets = report.world["accounts"]["123456789012"]["secrets"]
    trust = trust_of(report.world)
    granted = grant_external_ids(trust, NODE)
    assert len(granted) == 4, "no grant lost under concurrent onboarding"
    for cluster in ("bulk-east-1", "bulk-east-2", "bulk-east-4", "bulk-east-5"):
        assert evaluate_trust(trust, NODE, secrets[f"atc-xaccount/{cluster}/external-id"]).allowed
    assert trust["Statement"][:2] == trust_of(sample_world)["Statement"]


def test_a_failing_onboarding_is_reported_with_its_cause(sample_world, tmp_path: Path):
    rows = [
        {"clusterId": "ok-1", "clusterManagerAccountId": CM, "s3AccountId": "222222222222"},
        # An S3 account without atc-s3-access-keys: preflight refuses it before any write.
        {"clusterId": "no-role", "clusterManagerAccountId": CM, "s3AccountId": "333333333333"},
    ]
    path = tmp_path / "registrations.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    world = {"accounts": {**sample_world["accounts"], "333333333333": {"roles": {}, "policies": {}, "buckets": []}}}
    report = run_bulk(ROOT, path, world, parameters={"AllowedAccountPairs": f"{CM}:*"})

    rows_out = {r["clusterId"]: r for r in report.executions[0].bulk_report["rows"]}
    assert rows_out["ok-1"]["status"] == "SUCCEEDED"
    assert rows_out["no-role"]["status"] == "FAILED"
    assert "PrerequisiteMissing" in rows_out["no-role"]["cause"]
    cause = rows_out["no-role"]["cause"]
    assert "atc-s3-access-keys" in cause and "333333333333" in cause
