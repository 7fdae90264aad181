"""Bulk registration files: CSV or JSON lines in, validated items with line numbers out.

A bad row is reported with its line number and the rule it breaks, and does not stop
the others. Pure: the caller reads and writes the files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from typing import Any

from atc_xaccount.authorization import AccountPairs, authorize_pair, authorize_sender
from atc_xaccount.errors import InvalidEvent, RequestNotAuthorized
from atc_xaccount.model import Defaults, event_sender, parse_event

LIST_SEPARATORS = (";", " ")

#: A bulk row's onboarding is named `bulk-<16 hex of the bulk execution>-<line>`: its
#: reservations (bulk phase 1, steps/reserve.py) and the commits of its bulk's other rows
#: recognize it by that tag, and a re-run of the same file (another bulk execution) does not.
CHILD_PATTERN = re.compile(r"(bulk-[0-9a-f]{16})-[0-9]+")


def bulk_tag(bulk_execution: str) -> str:
    return f"bulk-{hashlib.sha256(bulk_execution.encode()).hexdigest()[:16]}"


def child_name(bulk_execution: str, line: int) -> str:
    """The name of the row's onboarding execution (unique per bulk execution and line)."""
    return f"{bulk_tag(bulk_execution)}-{line}"


def tag_of(execution: str | None) -> str | None:
    """The bulk an onboarding execution belongs to (None: not a bulk row's)."""
    match = CHILD_PATTERN.fullmatch(execution or "")
    return match.group(1) if match else None


def mark_reservations(items: list[dict[str, Any]], bulk_execution: str, defaults: Defaults) -> list[dict[str, Any]]:
    """Each item with its onboarding's name, its request, and whether its phase 1 reserves on the
    assume policy.

    Every row reserves its trust grant (each is its own external ID); on the assume policy,
    only the first row of each access role and node role does: the others would add nothing
    the first does not, and the policy's queue (one DynamoDB item) stays small for a file
    of thousands of rows into one cluster manager account.
    """
    seen: set[tuple[str, ...]] = set()
    marked = []
    for item in items:
        request = parse_event(item["detail"], defaults)
        key = (
            request.cluster_manager_account_id,
            request.assume_policy_name.lower(),
            request.s3_account_id,
            request.access_role_name.lower(),
            request.node_role_name.lower(),
        )
        marked.append(
            {
                **item,
                "execution": child_name(bulk_execution, item["line"]),
                "reservePolicy": key not in seen,
                # What the bulk withdraws if the row's onboarding fails (never the ID itself).
                "request": {k: v for k, v in request.to_dict().items() if k != "externalId"},
            }
        )
        seen.add(key)
    return marked


def detect_format(name: str, text: str) -> str:
    """ "jsonl" or "csv", by the file name, else by the first non-blank character."""
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "jsonl" if first.startswith("{") else "csv"


def parse_bulk(
    name: str, text: str, defaults: Defaults, pairs: AccountPairs | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items, rejected): items are `{"line", "detail"}`, rejected `{"line", "error"}`.

    With `pairs` (the deployment's AllowedAccountPairs) a row connecting accounts the
    deployment does not connect is rejected like a malformed one; so is a whole event whose
    `account` is not the cluster manager account it names.
    """
    rows = _jsonl_rows(text) if detect_format(name, text) == "jsonl" else _csv_rows(text)
    if not rows:
        raise InvalidEvent(
            f"bulk file {name}",
            "has no rows: give one registration per line, as JSON lines (an event or its detail) or"
            " as CSV under a header row naming the detail's fields"
            " (clusterId,clusterManagerAccountId,s3AccountId,buckets)",
        )
    items: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, str):
            rejected.append({"line": line, "error": row})
            continue
        try:
            request = parse_event(row, defaults)
            authorize_sender(event_sender(row), request.cluster_manager_account_id)
            if pairs is not None:
                authorize_pair(pairs, request.cluster_manager_account_id, request.s3_account_id, "row")
        except (InvalidEvent, RequestNotAuthorized) as exc:
            rejected.append({"line": line, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if request.cluster_id in seen:
            rejected.append(
                {"line": line, "error": f"clusterId {request.cluster_id} is already on line {seen[request.cluster_id]}"}
            )
            continue
        seen[request.cluster_id] = line
        items.append({"line": line, "clusterId": request.cluster_id, "detail": row})
    return items, rejected


def _jsonl_rows(text: str) -> list[tuple[int, dict[str, Any] | str]]:
    rows: list[tuple[int, dict[str, Any] | str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            rows.append((number, f"not valid JSON ({exc.msg})"))
            continue
        rows.append((number, value if isinstance(value, dict) else "must be a JSON object (an event or its detail)"))
    return rows


def _csv_rows(text: str) -> list[tuple[int, dict[str, Any] | str]]:
    """A header row names the detail fields; empty cells are absent; buckets split on ; or space."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, Any] | str]] = []
    for cells in reader:
        number = reader.line_num
        if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            continue
        if len(cells) > len(header):
            rows.append((number, f"{len(cells)} cells but the header names {len(header)} columns"))
            continue
        detail: dict[str, Any] = {}
        for column, cell in zip(header, cells, strict=False):
            value = cell.strip()
            if not value:
                continue
            detail[column] = _split(value) if column == "buckets" else value
        rows.append((number, detail))
    return rows


def _split(value: str) -> list[str]:
    for separator in LIST_SEPARATORS:
        value = value.replace(separator, " ")
    return value.split()


#: A report row's cause is at most this long: the onboarding's error name and message.
CAUSE_MAX = 600


def report_rows(results: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every line of the file, by line number: the Map's results (as its ResultWriter wrote
    them, `{Status, Input, Output | Error, Cause}`) and the rejected rows."""
    rows = [_result_row(r) for r in results]
    rows += [{"line": r["line"], "clusterId": None, "status": "REJECTED", "cause": r["error"]} for r in rejected]
    return sorted(rows, key=lambda r: r["line"] if isinstance(r["line"], int) else -1)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"total": len(rows), "counts": counts}


def _result_row(result: dict[str, Any]) -> dict[str, Any]:
    """One child execution of the Map: its output is the row; a failed one names only its
    line and cluster from its input (which also holds the row's externalId)."""
    if result.get("Status") == "SUCCEEDED":
        row = _json_object(result.get("Output"))
        return {
            "line": row.get("line"),
            "clusterId": row.get("clusterId"),
            "status": row.get("status", "SUCCEEDED"),
            "cause": cause_text(row.get("cause")),
        }
    item = _json_object(result.get("Input"))
    return {
        "line": item.get("line"),
        "clusterId": item.get("clusterId"),
        "status": "FAILED",
        "cause": _short(f"{result.get('Error') or 'States.Runtime'}: the row's execution failed in the bulk workflow"),
    }


def cause_text(cause: Any) -> str | None:
    """`{error, cause}` (what the bulk workflow keeps of a failed onboarding) as one line."""
    if not cause:
        return None
    if isinstance(cause, dict):
        error, message = cause.get("error"), cause.get("cause")
        return _short(f"{error}: {message}" if error and message else str(error or message))
    return _short(str(cause))


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _short(text: str) -> str:
    return text if len(text) <= CAUSE_MAX else text[: CAUSE_MAX - 1] + "…"
