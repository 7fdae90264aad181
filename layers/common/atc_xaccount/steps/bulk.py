"""Bulk onboarding (`statemachine/bulk.asl.json`): prepare the file, then report on it.

Prepare validates every row (bad rows are reported with their line numbers and do not
stop the others) and writes the good ones as a JSON array the Distributed Map reads, and
the rejected ones beside it; each item becomes one ordinary onboarding execution, so
per-role locks still serialize. Nothing that grows with the file goes through the
workflow's state (256 KiB): the Map's ResultWriter writes each row's result to S3 and the
report is built from there.
"""

from __future__ import annotations

import json
from typing import Any

from atc_xaccount.authorization import AccountPairs
from atc_xaccount.aws_errors import aws_call
from atc_xaccount.bulk import mark_reservations, parse_bulk, report_rows, summarize
from atc_xaccount.errors import AtcXaccountError
from atc_xaccount.model import parse_event
from atc_xaccount.steps.context import StepContext
from atc_xaccount.steps.validate import move_external_id

AUTOMATION_ACCOUNT = "automation"


def prepare(bucket: str, key: str, ctx: StepContext, pairs: AccountPairs | None = None) -> dict[str, Any]:
    """Validate and authorize every row (`pairs`: the deployment's AllowedAccountPairs); name
    each row's onboarding after this bulk execution (`ctx.execution`, its reservations'
    owner) and say which rows reserve on the assume policy (`mark_reservations`)."""
    s3 = ctx.sessions.local_client("s3")
    with aws_call("s3:GetObject", AUTOMATION_ACCOUNT):
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    items, rejected = parse_bulk(key, text, ctx.defaults, pairs)
    items, refused = _move_external_ids(items, ctx)
    rejected = sorted([*rejected, *refused], key=lambda r: r["line"])
    items = mark_reservations(items, ctx.execution or key, ctx.defaults)
    items_key, rejected_key = f"{key}.items.json", f"{key}.rejected.json"
    _put_json(s3, bucket, items_key, items)
    _put_json(s3, bucket, rejected_key, rejected)
    return {
        "bucket": bucket,
        "itemsKey": items_key,
        "items": len(items),
        "rejectedKey": rejected_key,
        "rejected": len(rejected),
    }


def _move_external_ids(
    items: list[dict[str, Any]], ctx: StepContext
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows that give an external ID: the ID into the cluster's secret, its fingerprint into the
    item (the items file, the Map's state and its ResultWriter files carry no ID)."""
    kept: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for item in items:
        row = item["detail"]
        if not (row.get("detail", row) or {}).get("externalId"):
            kept.append(item)
            continue
        try:
            request = move_external_id(parse_event(row, ctx.defaults), ctx)
        except AtcXaccountError as exc:
            refused.append({"line": item["line"], "error": f"{type(exc).__name__}: {exc}"})
            continue
        kept.append({**item, "detail": request.to_dict()})
    return kept, refused


def report(
    bucket: str,
    key: str,
    manifest: dict[str, Any],
    rejected_key: str,
    execution: str,
    ctx: StepContext,
) -> dict[str, Any]:
    """One row per line of the file, status and cause, written next to the input.

    `manifest` is the Map's `ResultWriterDetails` ({Bucket, Key} of manifest.json); the
    report lists every row, the return value only counts and the first problem rows.
    """
    s3 = ctx.sessions.local_client("s3")
    written = _get_json(s3, manifest["Bucket"], manifest["Key"])
    results: list[dict[str, Any]] = []
    for status in ("SUCCEEDED", "FAILED"):
        for result_file in written.get("ResultFiles", {}).get(status, []):
            results.extend(_get_json(s3, written.get("DestinationBucket", manifest["Bucket"]), result_file["Key"]))
    rejected = _get_json(s3, bucket, rejected_key)
    rows = report_rows(results, rejected)
    summary = {"input": f"s3://{bucket}/{key}", **summarize(rows)}
    report_key = f"reports/{execution}.json"
    with aws_call("s3:PutObject", AUTOMATION_ACCOUNT):
        s3.put_object(
            Bucket=bucket,
            Key=report_key,
            Body=json.dumps({**summary, "rows": rows}, indent=2).encode(),
            ContentType="application/json",
        )
    return {**summary, "report": f"s3://{bucket}/{report_key}", **_first_problems(rows)}


#: Problem rows returned in the workflow's output (the report in S3 has them all).
PROBLEMS_IN_OUTPUT = 20


def _first_problems(rows: list[dict[str, Any]]) -> dict[str, Any]:
    problems = [r for r in rows if r["status"] != "SUCCEEDED"]
    return {"problems": problems[:PROBLEMS_IN_OUTPUT], "problemsOmitted": max(0, len(problems) - PROBLEMS_IN_OUTPUT)}


def _put_json(s3: Any, bucket: str, key: str, value: Any) -> None:
    with aws_call("s3:PutObject", AUTOMATION_ACCOUNT):
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode(), ContentType="application/json")


def _get_json(s3: Any, bucket: str, key: str) -> Any:
    with aws_call("s3:GetObject", AUTOMATION_ACCOUNT):
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
