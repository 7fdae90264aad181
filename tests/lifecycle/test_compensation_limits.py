"""Compensation within its limits, and every cause it leaves readable (issue 16 item 6).

- IAM may still count an attachment right after DetachRolePolicy: compensation does not
  take AttachmentCount's word for a policy it has just detached (the emulator's
  `consistency` faults now show the stale count, as IAM does).
- A policy IAM takes longer to make attachable than the step waits is raised as
  IamPropagationDelay, which the state machine retries; before, it was AwsOperationFailed.
- An undo is not started when the Lambda has too little time left; it is reported as left
  (and recorded), never cut off by Lambda's timeout with nothing recording it.
- A compensation that cannot finish fails with a Cause that is JSON, which the bulk parses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atc_xaccount.aws_errors import RETRY_ATTEMPTS
from atc_xaccount.errors import left_from_cause
from atc_xaccount.steps.compensate import UNDO_RESERVE_SECONDS, UNDOES
from atc_xaccount_cli.local.engine import Emulator
from atc_xaccount_cli.local.faults import FaultPlan
from atc_xaccount_cli.local.run import run_bulk
from atc_xaccount_cli.local.template import load_yaml
from tests.lifecycle.conftest import CM, FIRST, ROOT, S3, iam_writes, load, registration, registry_of, run, targets

RECORD_FAILS = "Record/dynamodb:TransactWriteItems=fail"


def test_a_just_detached_policy_is_deleted_though_iam_still_counts_the_attachment(sample_world):
    report = run([registration(FIRST)], sample_world, faults=[RECORD_FAILS, "iam:*=consistency:1:2"])

    assert report.result.status == "FAILED" and report.result.error == "AwsOperationFailed", report.cause_message
    assert "iam:GetPolicy" in {f["call"] for f in report.faults}, "IAM showed the detached attachment still counted"
    assert "atc-s3-assume-role" not in targets(report.world)[CM]["policies"], "the policy it created is gone"
    assert targets(report.world) == sample_world["accounts"] | {}, "the accounts are as they were"
    assert iam_writes(report.calls)["iam:DeletePolicy"] == 3, "two DeleteConflict answers, then the delete"


def test_a_policy_not_attachable_for_longer_than_the_step_waits_is_retried_by_the_state_machine(sample_world):
    attempts = RETRY_ATTEMPTS + 1  # one more NoSuchEntity than the step itself retries
    report = run([registration(FIRST)], sample_world, faults=[f"iam:AttachRolePolicy=consistency:1:{attempts}"])

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert [f["call"] for f in report.faults].count("iam:AttachRolePolicy") == attempts
    writes = iam_writes(report.calls)
    assert writes["iam:CreatePolicy"] == 2 and writes["iam:DeletePolicy"] == 1, "undone in the step, then retried"
    assert f"arn:aws:iam::{CM}:policy/atc-s3-assume-role" in targets(report.world)[CM]["roles"]["atc-node"]["attached"]


def test_an_undo_the_lambda_has_no_time_left_for_is_reported_not_cut_off(sample_world):
    with Emulator(ROOT) as emulator:
        emulator.seed(sample_world)
        emulator.dispatcher.before_call = FaultPlan([RECORD_FAILS], seed=1).before_call
        # A compensation invoked with less time than an undo needs (Lambda counts down the Timeout).
        emulator.app.functions["CompensateFunction"].timeout = int(UNDO_RESERVE_SECONDS) - 5
        result = emulator.follow(emulator.start(registration(FIRST)))
        world = emulator.snapshot([CM, S3, "123456789012"])

    assert result.status == "FAILED" and result.error == "CompensationIncomplete", result.cause
    left = {item["change"]: item for item in left_from_cause(result.cause)}
    assert set(left) == {"trust", "attach", "assumePolicy", "externalId"}
    assert all(
        "s of the Lambda's time left" in item["error"] for item in left.values() if item["change"] != "externalId"
    )
    assert {i["change"] for i in registry_of(world)[FIRST]["leftBehind"]} == set(left), "recorded for the audit"


def test_the_compensate_timeout_leaves_every_undo_its_reserve():
    function = load_yaml(ROOT / "template.yaml")["Resources"]["CompensateFunction"]["Properties"]
    undos = len(UNDOES) + 1  # and the external ID's secret
    assert function["Timeout"] >= undos * (UNDO_RESERVE_SECONDS + 40), "each undo: its reserve and its calls"


def test_a_compensation_that_cannot_finish_leaves_a_json_cause_the_bulk_reads(sample_world, tmp_path: Path):
    faults = FaultPlan([RECORD_FAILS, "Compensate/iam:UpdateAssumeRolePolicy=denied"], seed=1)
    path = tmp_path / "registrations.jsonl"
    path.write_text(json.dumps(load("cluster-registered.json")["detail"]) + "\n")

    report = run_bulk(ROOT, path, sample_world, on_start=lambda em: _install(em, faults))

    assert report.result.status == "SUCCEEDED", (report.result.error, report.result.cause)
    [row] = report.executions[0].bulk_report["rows"]
    assert row["status"] == "FAILED"
    assert row["cause"].startswith("CompensationIncomplete: "), row
    assert "left 2 change(s) in place" in row["cause"] and "trust" in row["cause"]


def test_the_cause_of_an_incomplete_compensation_is_json_naming_the_failure_it_followed(sample_world):
    report = run(
        [registration(FIRST)], sample_world, faults=[RECORD_FAILS, "Compensate/iam:UpdateAssumeRolePolicy=denied"]
    )

    cause: dict[str, Any] = json.loads(report.result.cause or "")
    assert cause["errorType"] == "CompensationIncomplete"
    assert {i["change"] for i in left_from_cause(report.result.cause)} == {"trust", "externalId"}
    assert cause["after"]["error"] == "AwsOperationFailed"
    assert "dynamodb:TransactWriteItems" in cause["after"]["cause"]
    assert "(after AwsOperationFailed: " in (report.cause_message or ""), "the human message keeps both"


def _install(emulator: Emulator, faults: FaultPlan) -> None:
    emulator.dispatcher.before_call = faults.before_call
    emulator.dispatcher.after_call = faults.after_call
