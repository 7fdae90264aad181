"""The trust policy size quota: refused before any write, checked again under the lock,
and grants compact enough for 40 clusters under the default 2,048 characters."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.extid import generate_external_id
from atc_xaccount.redact import legacy_fingerprint
from atc_xaccount.trust import merge_trust_grant
from atc_xaccount_cli.local.run import RunReport
from tests.lifecycle.conftest import (
    AUTOMATION,
    FIRST,
    NODE_ARN,
    S3,
    admits,
    deregistration,
    external_id,
    granted_ids,
    iam_writes,
    registration,
    registry_of,
    run,
    secret_name,
    secrets_of,
    targets,
    trust_of,
)

DEFAULT_QUOTA = 2048


def id32(cluster: str) -> str:
    """A deterministic 32-character external ID."""
    return hashlib.sha256(cluster.encode()).hexdigest()[:32]


def with_grant(trust: dict[str, Any], ext_id: str) -> dict[str, Any]:
    return merge_trust_grant(trust, NODE_ARN, ext_id)[0]


def with_trust_quota(world: dict[str, Any], quota: int) -> dict[str, Any]:
    world = copy.deepcopy(world)
    world["accounts"][S3]["quotas"] = {"AssumeRolePolicySizeQuota": quota}
    return world


def without_quotas(world: dict[str, Any]) -> dict[str, Any]:
    """The world's accounts as a snapshot reports them (quotas are not read back)."""
    return {a: {k: v for k, v in s.items() if k != "quotas"} for a, s in world["accounts"].items()}


def padded(world: dict[str, Any], size: int) -> dict[str, Any]:
    """The world with a partner grant padding the access role's trust policy to `size` characters.

    Quotas below IAM's default of 2,048 do not exist (it can only be raised), so the
    races for the last room happen above it.
    """
    world = copy.deepcopy(world)
    trust = world["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"]
    pad = {
        "Sid": "PaddingPartner",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": ""}},
    }
    trust["Statement"].append(pad)
    pad["Condition"]["StringEquals"]["sts:ExternalId"] = "p" * (size - non_whitespace_size(trust))
    assert non_whitespace_size(trust) == size
    return world


def test_trust_policy_one_character_short_fails_naming_the_quota_with_zero_writes(sample_world):
    big = padded(sample_world, 2000)
    room = non_whitespace_size(with_grant(trust_of(big), generate_external_id()))
    world = with_trust_quota(big, room - 1)

    report = run([registration(FIRST)], world)

    assert report.result.status == "FAILED"
    assert report.result.error == "QuotaExceeded"
    message = report.cause_message
    assert "AssumeRolePolicySizeQuota" in message
    assert "atc-s3-access-keys" in message and S3 in message
    assert f"would need {room} against the quota" in message and f"of {room - 1}" in message
    assert "Service Quotas" in message, "the message says how to raise the quota"
    assert report.calls["writes"] == 0, report.calls
    assert targets(report.world) == without_quotas(world)
    assert secrets_of(report.world) == {}


def test_two_registrations_racing_for_the_last_room_grant_one_and_refuse_the_other(sample_world):
    big = padded(sample_world, 2000)
    room = non_whitespace_size(with_grant(trust_of(big), generate_external_id()))

    report = run([registration("racer-a"), registration("racer-b")], with_trust_quota(big, room))

    outcomes = sorted((e.result.status, e.result.error) for e in report.executions)
    assert outcomes == [("FAILED", "QuotaExceeded"), ("SUCCEEDED", None)]
    loser = next(e for e in report.executions if e.result.status == "FAILED")
    winner = next(e for e in report.executions if e.result.status == "SUCCEEDED")
    assert iam_writes(loser.calls) == {}, "the refused registration wrote nothing to IAM"
    winner_cluster = winner.result.output["request"]["clusterId"]
    assert list(secrets_of(report.world)) == [secret_name(winner_cluster)]
    assert granted_ids(report.world) == [external_id(report.world, winner_cluster)]
    assert non_whitespace_size(trust_of(report.world)) == room


# --- forty clusters on one role --------------------------------------------------------------

SEEDED = [f"seeded-{i:02d}" for i in range(1, 40)]
FORTIETH, LEAVING = "cluster-40", "seeded-17"


def forty_minus_one(registered: RunReport, sample_world: dict[str, Any]) -> dict[str, Any]:
    """39 clusters registered on one role, as the merge function and registry record them.

    The cluster manager account (policy, attachment) and the registry record's shape are
    the engine's own output for demo-cluster-1; each clone gets its own 32-character ID.
    """
    world = copy.deepcopy(registered.world)
    template = registry_of(registered.world)[FIRST]
    trust = copy.deepcopy(trust_of(sample_world))
    secrets, registry = {}, {}
    for cluster in SEEDED:
        trust = with_grant(trust, id32(cluster))
        secrets[secret_name(cluster)] = id32(cluster)
        registry[cluster] = {
            **template,
            "clusterId": cluster,
            "externalIdSecretName": secret_name(cluster),
            "externalIdFingerprint": legacy_fingerprint(id32(cluster)),  # written before the key existed
            "lastExecution": "seeded",
        }
    world["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"] = trust
    world["accounts"][AUTOMATION] = {"secrets": secrets, "registry": registry}
    return world


@pytest.fixture(scope="module")
def forty(registered, sample_world) -> tuple[RunReport, RunReport]:
    """The 40th cluster registered through the engine, then the 17th deregistered."""
    fortieth = run([registration(FORTIETH, externalId=id32(FORTIETH))], forty_minus_one(registered, sample_world))
    leaving = run([deregistration(LEAVING)], fortieth.world)
    return fortieth, leaving


def test_forty_clusters_are_granted_within_the_default_quota(forty):
    fortieth, _ = forty
    world = fortieth.world
    ids = [id32(c) for c in [*SEEDED, FORTIETH]]

    assert fortieth.result.status == "SUCCEEDED", fortieth.cause_message
    assert fortieth.result.output["preflight"]["trustPolicyQuota"] == DEFAULT_QUOTA
    assert non_whitespace_size(trust_of(world)) <= DEFAULT_QUOTA
    assert granted_ids(world) == sorted(ids)
    assert all(admits(world, ext_id) for ext_id in ids)
    assert iam_writes(fortieth.calls) == {"iam:UpdateAssumeRolePolicy": 1}


def test_deregistering_one_of_forty_removes_exactly_its_external_id(forty, sample_world):
    fortieth, leaving = forty
    expected = copy.deepcopy(trust_of(sample_world))
    for cluster in [*SEEDED, FORTIETH]:
        if cluster != LEAVING:
            expected = with_grant(expected, id32(cluster))

    assert leaving.result.status == "SUCCEEDED", leaving.cause_message
    assert trust_of(leaving.world) == expected
    assert not admits(leaving.world, id32(LEAVING))
    before, after = copy.deepcopy(targets(fortieth.world)), copy.deepcopy(targets(leaving.world))
    del before[S3]["roles"]["atc-s3-access-keys"], after[S3]["roles"]["atc-s3-access-keys"]
    assert after == before, "nothing but the one grant changed"


# --- capacity of one role ---------------------------------------------------------------------


def capacity(trust: dict[str, Any], quota: int, new_id: Any) -> int:
    """How many clusters' grants one trust policy holds before it would cross `quota`."""
    count = 0
    while True:
        merged = with_grant(trust, new_id(count))
        if non_whitespace_size(merged) > quota:
            return count
        trust, count = merged, count + 1


@pytest.mark.parametrize(("quota", "at_least"), [(2048, 40), (4096, 100)])
def test_one_role_holds_many_clusters_with_32_character_ids(sample_world, quota, at_least):
    held = capacity(trust_of(sample_world), quota, lambda n: id32(f"cluster-{n}"))

    assert held >= at_least


def test_one_role_holds_forty_clusters_with_generated_ids(sample_world):
    held = capacity(trust_of(sample_world), DEFAULT_QUOTA, lambda _: generate_external_id())

    assert held >= 40
