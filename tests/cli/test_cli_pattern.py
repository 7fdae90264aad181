"""EventBridge pattern matching, table-driven against the documented EventBridge semantics.

Source: "Content filtering in Amazon EventBridge event patterns" and "Comparison operators
for use in event patterns" (EventBridge user guide).
"""

from __future__ import annotations

from typing import Any

import pytest

from atc_xaccount_cli.local.pattern import matches

EVENT: dict[str, Any] = {
    "source": "atc.cluster-manager",
    "detail-type": "Cluster Registered",
    "region": "eu-west-1",
    "resources": ["arn:aws:ec2:eu-west-1:111111111111:instance/i-1", "arn:aws:s3:::atc-demo-transfers"],
    "detail": {
        "clusterId": "demo-cluster-1",
        "state": "running",
        "file": "photo.PNG",
        "count": 5,
        "ratio": 0.25,
        "owner": None,
        "location": {"city": "New York"},
    },
}

CASES = [
    # exact values
    ("exact string", {"source": ["atc.cluster-manager"]}, True),
    ("exact string, other value", {"source": ["atc.other"]}, False),
    ("exact is case-sensitive", {"detail-type": ["cluster registered"]}, False),
    ("exact number", {"detail": {"count": [5]}}, True),
    ("exact null matches JSON null", {"detail": {"owner": [None]}}, True),
    ("null does not match a missing field", {"detail": {"absent": [None]}}, False),
    # lists: OR within a field, AND across fields
    ("any value of the list", {"source": ["x", "atc.cluster-manager"]}, True),
    ("no value of the list", {"source": ["x", "y"]}, False),
    ("fields are ANDed", {"source": ["atc.cluster-manager"], "detail-type": ["Cluster Deregistered"]}, False),
    ("event array: any element matches", {"resources": ["arn:aws:s3:::atc-demo-transfers"]}, True),
    ("event array: no element matches", {"resources": ["arn:aws:s3:::other"]}, False),
    # nesting
    ("nested field", {"detail": {"location": {"city": ["New York"]}}}, True),
    ("nested field, other value", {"detail": {"location": {"city": ["Paris"]}}}, False),
    ("nested pattern over a scalar", {"source": {"city": ["New York"]}}, False),
    # prefix / suffix
    ("prefix", {"region": [{"prefix": "eu-"}]}, True),
    ("prefix, no match", {"region": [{"prefix": "us-"}]}, False),
    ("prefix is case-sensitive", {"region": [{"prefix": "EU-"}]}, False),
    ("prefix on a number never matches", {"detail": {"count": [{"prefix": "5"}]}}, False),
    ("suffix", {"detail": {"file": [{"suffix": ".PNG"}]}}, True),
    ("suffix is case-sensitive", {"detail": {"file": [{"suffix": ".png"}]}}, False),
    # anything-but
    ("anything-but string", {"detail": {"state": [{"anything-but": "initializing"}]}}, True),
    ("anything-but the value", {"detail": {"state": [{"anything-but": "running"}]}}, False),
    ("anything-but list", {"detail": {"state": [{"anything-but": ["stopped", "running"]}]}}, False),
    ("anything-but numbers", {"detail": {"count": [{"anything-but": [100, 200]}]}}, True),
    ("anything-but prefix", {"region": [{"anything-but": {"prefix": "us-"}}]}, True),
    ("anything-but prefix, excluded", {"region": [{"anything-but": {"prefix": "eu-"}}]}, False),
    ("anything-but suffix", {"detail": {"file": [{"anything-but": {"suffix": ".PNG"}}]}}, False),
    (
        "anything-but ignore case",
        {"detail": {"state": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}},
        False,
    ),
    ("anything-but on a missing field", {"detail": {"absent": [{"anything-but": "x"}]}}, False),
    # exists
    ("exists true, present", {"detail": {"state": [{"exists": True}]}}, True),
    ("exists true, absent", {"detail": {"absent": [{"exists": True}]}}, False),
    ("exists false, absent", {"detail": {"absent": [{"exists": False}]}}, True),
    ("exists false, present", {"detail": {"state": [{"exists": False}]}}, False),
    # numeric
    ("numeric range", {"detail": {"count": [{"numeric": [">", 0, "<=", 5]}]}}, True),
    ("numeric range, outside", {"detail": {"count": [{"numeric": [">", 5]}]}}, False),
    ("numeric equals", {"detail": {"ratio": [{"numeric": ["=", 0.25]}]}}, True),
    ("numeric on a string never matches", {"detail": {"clusterId": [{"numeric": [">", 0]}]}}, False),
    # equals-ignore-case
    ("equals-ignore-case", {"detail-type": [{"equals-ignore-case": "CLUSTER registered"}]}, True),
    ("equals-ignore-case, other value", {"detail-type": [{"equals-ignore-case": "cluster deregistered"}]}, False),
    # missing fields
    ("missing top-level field", {"account": ["111111111111"]}, False),
    ("missing nested object", {"detail": {"nested": {"x": ["y"]}}}, False),
    ("empty pattern matches everything", {}, True),
]


@pytest.mark.parametrize(("pattern", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_like_eventbridge(pattern, expected):
    assert matches(pattern, EVENT) is expected


def test_the_templates_rule_takes_registered_events_only():
    pattern = {"source": ["atc.cluster-manager"], "detail-type": ["Cluster Registered"]}

    assert matches(pattern, EVENT)
    assert not matches(pattern, {**EVENT, "detail-type": "Cluster Deregistered"})
    assert not matches(pattern, {**EVENT, "source": "someone.else"})
    assert not matches(pattern, EVENT["detail"]), "a bare detail has no source or detail-type"


@pytest.mark.parametrize(
    "pattern",
    [
        {"region": [{"prefix": {"equals-ignore-case": "EU-"}}]},
        {"detail": {"file": [{"suffix": {"equals-ignore-case": ".png"}}]}},
    ],
    ids=["prefix", "suffix"],
)
def test_prefix_and_suffix_ignoring_case(pattern):
    assert matches(pattern, EVENT)


@pytest.mark.parametrize(
    "pattern",
    [{"flag": [{"numeric": [">", 0]}]}, {"flag": [1]}],
    ids=["numeric", "exact-number"],
)
def test_booleans_are_not_numbers(pattern):
    assert not matches(pattern, {"flag": True})
