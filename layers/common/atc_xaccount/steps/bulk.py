"""Bulk onboarding (`statemachine/bulk.asl.json`): prepare the file, then report on it.

Prepare validates every row (bad rows are reported with their line numbers and do not
stop the others) and writes the good ones as a JSON array the Distributed Map reads;
each item becomes one ordinary onboarding execution, so per-role locks still serialize.
"""

from __future__ import annotations

import json
from typing import Any

from atc_xaccount.aws_errors import aws_call
from atc_xaccount.bulk import parse_bulk
from atc_xaccount.steps.context import StepContext

AUTOMATION_ACCOUNT = "automation"


def prepare(bucket: str, key: str, ctx: StepContext) -> dict[str, Any]:
    s3 = ctx.sessions.local_client("s3")
    with aws_call("s3:GetObject", AUTOMATION_ACCOUNT):
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    items, rejected = parse_bulk(key, text, ctx.defaults)
    items_key = f"{key}.items.json"
    with aws_call("s3:PutObject", AUTOMATION_ACCOUNT):
        s3.put_object(Bucket=bucket, Key=items_key, Body=json.dumps(items).encode(), ContentType="application/json")
    return {"bucket": bucket, "itemsKey": items_key, "items": len(items), "rejected": rejected}


def report(
    bucket: str,
    key: str,
    results: list[dict[str, Any]],
    rejected: list[dict[str, Any]],
    execution: str,
    ctx: StepContext,
) -> dict[str, Any]:
    """One row per line of the file: status and cause; written next to the input."""
    rows = sorted(
        [
            {"line": r["line"], "clusterId": r.get("clusterId"), "status": r["status"], "cause": _cause(r.get("cause"))}
            for r in results
        ]
        + [{"line": r["line"], "clusterId": None, "status": "REJECTED", "cause": r["error"]} for r in rejected],
        key=lambda r: r["line"],
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = {"input": f"s3://{bucket}/{key}", "total": len(rows), "counts": counts, "rows": rows}
    report_key = f"reports/{execution}.json"
    with aws_call("s3:PutObject", AUTOMATION_ACCOUNT):
        ctx.sessions.local_client("s3").put_object(
            Bucket=bucket, Key=report_key, Body=json.dumps(summary, indent=2).encode(), ContentType="application/json"
        )
    return {**{k: v for k, v in summary.items() if k != "rows"}, "report": f"s3://{bucket}/{report_key}", "rows": rows}


def _cause(cause: Any) -> str | None:
    """A failed child execution's cause is its DescribeExecution output: keep error and message."""
    if not cause:
        return None
    try:
        described = json.loads(cause) if isinstance(cause, str) else cause
    except json.JSONDecodeError:
        return str(cause)
    if not isinstance(described, dict):
        return str(cause)
    inner = described.get("cause") or ""
    try:
        parsed = json.loads(inner)
        message = parsed.get("errorMessage", inner) if isinstance(parsed, dict) else inner
    except (json.JSONDecodeError, TypeError):
        message = inner
    error = described.get("error")
    return f"{error}: {message}" if error else str(message or cause)
