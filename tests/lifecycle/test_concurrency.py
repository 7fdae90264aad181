"""At-least-once delivery, concurrent registrations, throttling and eventual consistency:
many executions at once on one emulated world (moto runs each in its own thread)."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from atc_xaccount_cli.local.run import RunReport
from tests.lifecycle.conftest import (
    CM,
    FIRST,
    READY,
    S3,
    admits,
    external_id,
    granted_ids,
    iam_writes,
    published,
    registration,
    registry_of,
    relocated,
    run,
    secret_name,
    secrets_of,
    trust_of,
)

TWENTY = [f"concurrent-{i:02d}" for i in range(20)]
THROTTLED = ["throttled-a", "throttled-b", "throttled-c"]
#: The duplicates use their own account pair, so their locks never meet the twenty's.
DUP_CM, DUP_S3, DUPLICATE = "444444444444", "555555555555", "duplicated-cluster"


class AtOnce:
    """One run, one world: ten deliveries of one event and twenty different clusters, all at once."""

    def __init__(self, sample_world: dict[str, Any]) -> None:
        world = copy.deepcopy(sample_world)
        world["accounts"].update(relocated(sample_world, DUP_CM, DUP_S3)["accounts"])
        world["accounts"][DUP_S3]["buckets"] = []  # bucket names are global: the bucket is the first pair's
        duplicate = registration(DUPLICATE, clusterManagerAccountId=DUP_CM, s3AccountId=DUP_S3)
        self.report = run([duplicate] * 10 + [registration(c) for c in TWENTY], world)
        self.world = self.report.world
        self.duplicates = self.report.executions[:10]
        self.twenty = self.report.executions[10:]


@pytest.fixture(scope="module")
def at_once(sample_world) -> AtOnce:
    return AtOnce(sample_world)


def failures(executions: list[Any]) -> list[tuple[str | None, str | None]]:
    return [(e.result.error, e.cause_message) for e in executions if e.result.status != "SUCCEEDED"]


def test_ten_duplicate_events_all_succeed(at_once):
    assert [e.result.status for e in at_once.duplicates] == ["SUCCEEDED"] * 10, failures(at_once.duplicates)
    assert sum(len(published(e, READY)) for e in at_once.duplicates) == 10


def test_ten_duplicate_events_yield_one_grant_with_one_external_id(at_once, sample_world):
    world = at_once.world
    ext_id = external_id(world, DUPLICATE)

    assert [name for name in secrets_of(world) if DUPLICATE in name] == [secret_name(DUPLICATE)]
    assert granted_ids(world, DUP_CM, DUP_S3) == [ext_id]
    assert admits(world, ext_id, DUP_CM, DUP_S3)
    assert trust_of(world, DUP_S3)["Statement"][:2] == trust_of(sample_world)["Statement"]
    assert len(trust_of(world, DUP_S3)["Statement"]) == 3
    assert iam_writes(*(e.calls for e in at_once.duplicates)) == {
        "iam:CreatePolicy": 1,
        "iam:AttachRolePolicy": 1,
        "iam:UpdateAssumeRolePolicy": 1,
    }
    assert registry_of(world)[DUPLICATE]["state"] == "READY"


def test_twenty_concurrent_registrations_all_succeed(at_once):
    assert [e.result.status for e in at_once.twenty] == ["SUCCEEDED"] * 20, failures(at_once.twenty)


def test_twenty_concurrent_registrations_lose_no_grant(at_once, sample_world):
    world = at_once.world
    ids = [external_id(world, cluster) for cluster in TWENTY]

    assert len(set(ids)) == 20
    assert granted_ids(world) == sorted(ids), "every cluster's external ID is in the one grant: no lost update"
    assert all(admits(world, ext_id) for ext_id in ids)
    assert trust_of(world)["Statement"][:2] == trust_of(sample_world)["Statement"]
    writes = iam_writes(*(e.calls for e in at_once.twenty))
    # Group commit (docs/converge.md): the trust policy is written once per batch, not once
    # per cluster (it was 20); the policy and its attachment once.
    assert {k: n for k, n in writes.items() if k != "iam:UpdateAssumeRolePolicy"} == {
        "iam:CreatePolicy": 1,
        "iam:AttachRolePolicy": 1,
    }
    assert 1 <= writes["iam:UpdateAssumeRolePolicy"] <= 8, writes
    registry = registry_of(world)
    assert {cluster: registry[cluster]["state"] for cluster in TWENTY} == dict.fromkeys(TWENTY, "READY")


def test_twenty_concurrent_registrations_share_one_policy_resource(at_once):
    policy = at_once.world["accounts"][CM]["policies"]["atc-s3-assume-role"]

    assert policy["versions"] == 1
    assert policy["document"]["Statement"][0]["Resource"] == [f"arn:aws:iam::{S3}:role/atc-s3-access-keys"]


@pytest.fixture(scope="module")
def throttled(sample_world) -> RunReport:
    return run([registration(c) for c in THROTTLED], sample_world, faults=["iam:writes=throttle:0.3"], seed=1)


def test_thirty_percent_throttled_iam_writes_still_converge(throttled):
    assert throttled.faults, "the seeded plan throttled some writes"
    assert {(f["kind"], f["call"].startswith("iam:")) for f in throttled.faults} == {("throttle", True)}
    assert [e.result.status for e in throttled.executions] == ["SUCCEEDED"] * 3, [
        e.cause_message for e in throttled.executions
    ]
    for cluster in THROTTLED:
        assert admits(throttled.world, external_id(throttled.world, cluster))
    writes = iam_writes(throttled.calls)
    for call, times in Counter(f["call"] for f in throttled.faults).items():
        assert writes[call] > times, f"{call} was retried until it went through"


def test_invalid_principal_while_iam_propagates_is_retried_until_it_converges(sample_world):
    report = run(
        [registration(FIRST)],
        sample_world,
        faults=["MergeTrust/iam:UpdateAssumeRolePolicy=propagation:1:1"],
    )

    assert [(f["step"], f["call"]) for f in report.faults] == [("MergeTrustFunction", "iam:UpdateAssumeRolePolicy")]
    assert report.result.status == "SUCCEEDED", report.cause_message
    assert admits(report.world, external_id(report.world, FIRST))
