"""A bulk file of any length completes within AWS's payload quota, and keeps external IDs out.

The emulator's payload limit is lowered (a setting, AWS's 256 KiB by default) so that a
few hundred rows would pass it if the workflow held every row's result in its state, and
the `.sync:2` failure causes are AWS's PascalCase DescribeExecution (the bridge), whose
Input holds the row's externalId.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.local.run import run_bulk
from tests.engine.conftest import CM, ROOT

NO_ROLE = "333333333333"
#: The sample cluster manager account may be connected to any S3 account, NO_ROLE included.
ANY_S3_ACCOUNT = {"AllowedAccountPairs": "111111111111:*"}
LIMIT = 12 * 1024
FAILING, REJECTED = 120, 6


def external_id(i: int) -> str:
    return f"Xid{i:05d}SecretValueDoNotLeak"


@pytest.fixture(scope="module")
def bulk_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for i in range(FAILING):
        row = {"clusterId": f"fails-{i:03d}", "clusterManagerAccountId": CM, "s3AccountId": NO_ROLE}
        if i % 2 == 0:
            row["externalId"] = external_id(i)
        rows.append(row)
    for i in range(REJECTED):
        rows.append(
            {
                "clusterId": f"bad-{i}",
                "clusterManagerAccountId": CM,
                "s3AccountId": "12",
                "externalId": external_id(900 + i),
            }
        )
    path: Path = tmp_path_factory.mktemp("bulk") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    world = {
        "accounts": {
            CM: {"roles": {"atc-node": {"trust": {"Version": "2012-10-17", "Statement": []}, "attached": []}}},
            NO_ROLE: {"roles": {}, "policies": {}, "buckets": []},
        }
    }
    seen: dict[str, Any] = {}

    def on_finish(emulator: Any, result: Any) -> None:
        sfn = emulator.client("stepfunctions")
        events = [
            e for p in sfn.get_paginator("get_execution_history").paginate(executionArn=result.arn) for e in p["events"]
        ]
        seen["history"] = json.dumps(events, default=str)
        if result.status != "SUCCEEDED":
            seen["report_body"] = ""
            return
        location = result.output["report"]["report"].removeprefix("s3://")
        bucket, _, key = location.partition("/")
        seen["report_body"] = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    report = run_bulk(ROOT, path, world, on_finish=on_finish, payload_limit=LIMIT, parameters=ANY_S3_ACCOUNT)
    return {"report": report, "rows": rows, **seen}


def test_every_row_is_reported_with_a_short_cause(bulk_run):
    report = bulk_run["report"]
    assert report.result.status == "SUCCEEDED", (report.result.error, report.cause_message)
    rows = report.executions[0].bulk_report["rows"]
    assert [r["line"] for r in rows] == list(range(1, FAILING + REJECTED + 1))
    assert report.executions[0].bulk_report["counts"] == {"FAILED": FAILING, "REJECTED": REJECTED}
    for row in rows:
        assert len(row["cause"]) < 300, row
    failed = [r for r in rows if r["status"] == "FAILED"]
    assert all(r["cause"].startswith("PrerequisiteMissing: role atc-s3-access-keys does not exist") for r in failed)
    assert all(NO_ROLE in r["cause"] for r in failed)
    output = report.result.output["report"]
    assert len(output["problems"]) == 20 and output["problemsOmitted"] == FAILING + REJECTED - 20


def test_no_external_id_in_the_output_the_history_or_the_report(bulk_run):
    ids = [r["externalId"] for r in bulk_run["rows"] if "externalId" in r]
    assert len(ids) == FAILING // 2 + REJECTED
    where = {
        "output": json.dumps(bulk_run["report"].result.output),
        "history": bulk_run["history"],
        "report": bulk_run["report_body"],
    }
    for name, text in where.items():
        leaked = [i for i in ids if i in text]
        assert leaked == [], f"external IDs in the {name}: {leaked[:3]}"


def test_the_state_stays_under_the_payload_limit(bulk_run):
    """The largest payload any state saw is under the lowered limit; every row's result alone is far over it."""
    assert 0 < bulk_run["report"].largest_payload <= LIMIT
    assert len(bulk_run["report_body"]) > LIMIT
