"""Bulk registration files: every good row kept, every bad row named by its line."""

from __future__ import annotations

import json

import pytest

from atc_xaccount.bulk import detect_format, parse_bulk
from atc_xaccount.errors import InvalidEvent
from atc_xaccount.model import Defaults

CSV = """clusterId,clusterManagerAccountId,s3AccountId,buckets,nodeRoleName
# comment lines and blank lines are skipped

east-1,111111111111,222222222222,bucket-a;bucket-b,
east-2,111111111111,2222222222,,
east-3,111111111111,222222222222,,atc-node-blue
east-1,111111111111,222222222222,,
"""


def test_csv_rows_become_details_and_bad_rows_keep_their_line_numbers():
    items, rejected = parse_bulk("clusters.csv", CSV, Defaults())

    assert [(i["line"], i["clusterId"]) for i in items] == [(4, "east-1"), (6, "east-3")]
    assert items[0]["detail"] == {
        "clusterId": "east-1",
        "clusterManagerAccountId": "111111111111",
        "s3AccountId": "222222222222",
        "buckets": ["bucket-a", "bucket-b"],
    }
    assert items[1]["detail"]["nodeRoleName"] == "atc-node-blue"
    assert [r["line"] for r in rejected] == [5, 7]
    assert "detail.s3AccountId" in rejected[0]["error"]
    assert "already on line 4" in rejected[1]["error"]


def test_json_lines_accept_events_or_details_and_report_broken_lines():
    event = {
        "detail-type": "Cluster Registered",
        "source": "atc.cluster-manager",
        "detail": {"clusterId": "a", "clusterManagerAccountId": "111111111111", "s3AccountId": "222222222222"},
    }
    text = "\n".join(
        [
            json.dumps(event),
            json.dumps({"clusterId": "b", "clusterManagerAccountId": "111111111111", "s3AccountId": "333333333333"}),
            "{not json",
            "[1, 2]",
            json.dumps({"clusterId": "c", "clusterManagerAccountId": "1", "s3AccountId": "333333333333", "x": 1}),
        ]
    )
    items, rejected = parse_bulk("clusters.jsonl", text, Defaults())

    assert [i["clusterId"] for i in items] == ["a", "b"]
    assert [(r["line"], r["error"].split(" ")[0]) for r in rejected] == [
        (3, "not"),
        (4, "must"),
        (5, "InvalidEvent:"),
    ]
    assert "detail.x" in rejected[2]["error"] and "clusterManagerAccountId" in rejected[2]["error"]


def test_format_follows_the_name_then_the_content():
    assert detect_format("a.csv", "{") == "csv"
    assert detect_format("a.ndjson", "x") == "jsonl"
    assert detect_format("upload", '\n  {"clusterId": "x"}') == "jsonl"
    assert detect_format("upload", "clusterId,s3AccountId") == "csv"


def test_a_row_wider_than_the_header_is_refused():
    items, rejected = parse_bulk("f.csv", "clusterId,s3AccountId\na,1,extra\n", Defaults())
    assert items == [] and "3 cells" in rejected[0]["error"]


@pytest.mark.parametrize(
    "name, text",
    [
        ("empty.csv", ""),
        ("header.csv", "clusterId,clusterManagerAccountId,s3AccountId\n"),
        ("blank.jsonl", "\n# none\n"),
    ],
)
def test_a_file_without_rows_is_refused_not_reported_as_done(name, text):
    """A bulk file with nothing to register is a mistake (an empty export, a header alone):
    it fails in Prepare naming the format, instead of "0 rows" and exit 0."""
    with pytest.raises(InvalidEvent, match="has no rows") as raised:
        parse_bulk(name, text, Defaults())
    assert "clusterId,clusterManagerAccountId,s3AccountId" in str(raised.value)
