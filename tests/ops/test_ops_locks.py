"""The leased locks and their recorded document hashes, on moto's DynamoDB."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from atc_xaccount import locks, registry
from atc_xaccount.errors import ResourceLocked, StaleRead

TABLE = "locks"
REGISTRY = "registry"
TRUST = locks.trust_lock_key("222222222222", "atc-s3-access-keys")
POLICY = locks.policy_lock_key("111111111111", "atc-s3-assume-role")


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    for name, key in ((TABLE, "lockKey"), (REGISTRY, "clusterId")):
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return client


def item(dynamodb: Any, key: str) -> dict[str, Any]:
    found = dynamodb.get_item(TableName=TABLE, Key={"lockKey": {"S": key}}).get("Item") or {}
    return {k: next(iter(v.values())) for k, v in found.items()}


def test_document_hash_ignores_key_order_and_tells_documents_apart() -> None:
    a = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    b = {"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow"}], "Version": "2012-10-17"}
    assert locks.document_hash(a) == locks.document_hash(b)
    assert locks.document_hash(a) != locks.document_hash({**a, "Statement": []})
    assert locks.policy_hash(None, None) == locks.ABSENT
    assert locks.policy_hash("v1", a) != locks.policy_hash("v2", a)


def test_first_lock_of_a_resource_is_taken_whatever_was_read(dynamodb: Any) -> None:
    taken = locks.acquire_if_unchanged(dynamodb, TABLE, {TRUST: "h1", POLICY: "p1"}, "exec-a")
    assert taken is not None and taken["keys"] == sorted([TRUST, POLICY])
    assert item(dynamodb, TRUST)["owner"] == "exec-a"


def test_a_held_lock_is_not_taken_by_the_fast_path(dynamodb: Any) -> None:
    locks.acquire(dynamodb, TABLE, [TRUST], "exec-a")
    assert locks.acquire_if_unchanged(dynamodb, TABLE, {TRUST: "h1", POLICY: "p1"}, "exec-b") is None
    # all or nothing: the free policy lock was not taken either
    assert "owner" not in item(dynamodb, POLICY)


def test_release_records_what_the_holder_left_and_the_fast_path_compares_it(dynamodb: Any) -> None:
    locks.acquire_if_unchanged(dynamodb, TABLE, {TRUST: "h0", POLICY: "p0"}, "exec-a")
    locks.release(dynamodb, TABLE, [TRUST, POLICY], "exec-a", hashes={TRUST: "h1", POLICY: "p0"})
    assert item(dynamodb, TRUST) == {"lockKey": TRUST, "docHash": "h1"}
    # exec-b read before exec-a wrote: its read is stale, the fast path refuses
    assert locks.acquire_if_unchanged(dynamodb, TABLE, {TRUST: "h0", POLICY: "p0"}, "exec-b") is None
    # exec-c read what exec-a left: taken without reading again
    assert locks.acquire_if_unchanged(dynamodb, TABLE, {TRUST: "h1", POLICY: "p0"}, "exec-c") is not None


def test_a_release_keeps_what_the_writers_noted_and_fences_a_stale_read(dynamodb: Any) -> None:
    locks.acquire(dynamodb, TABLE, [TRUST, POLICY], "offboard")
    locks.note_write(dynamodb, TABLE, TRUST, "offboard", "h2", prior=["h1", "h0"])
    locks.release(dynamodb, TABLE, [TRUST, POLICY], "offboard")
    assert item(dynamodb, TRUST)["docHash"] == "h2"
    assert "docHash" not in item(dynamodb, POLICY)  # nothing written there: nothing claimed
    locks.acquire(dynamodb, TABLE, [TRUST], "exec-b")
    # what the last writer left: fresh; a write over it replaces h2, then h1, h0
    assert locks.fence(dynamodb, TABLE, TRUST, "h2") == ["h2", "h1", "h0"]
    with pytest.raises(StaleRead) as raised:
        locks.fence(dynamodb, TABLE, TRUST, "h1")  # a version it replaced, seconds later: stale
    assert TRUST in str(raised.value)
    # long after the write, an old version is taken as read; so is one our writers never wrote
    locks.fence(dynamodb, TABLE, TRUST, "h1", now=time.time() + locks.FENCE_SECONDS + 1)
    assert locks.fence(dynamodb, TABLE, TRUST, "edited-by-hand")[0] == "edited-by-hand"


def test_a_note_on_a_lock_someone_took_over_is_not_written(dynamodb: Any) -> None:
    locks.acquire(dynamodb, TABLE, [TRUST], "slow", lease_seconds=-10)
    locks.acquire(dynamodb, TABLE, [TRUST], "taker")
    locks.note_write(dynamodb, TABLE, TRUST, "slow", "late")
    assert "docHash" not in item(dynamodb, TRUST)


def test_slow_path_is_reentrant_and_names_the_holder(dynamodb: Any) -> None:
    locks.acquire(dynamodb, TABLE, [TRUST], "exec-a")
    locks.acquire(dynamodb, TABLE, [TRUST], "exec-a")
    with pytest.raises(ResourceLocked) as raised:
        locks.acquire(dynamodb, TABLE, [TRUST, POLICY], "exec-b")
    assert "exec-a" in str(raised.value)


def test_an_expired_lease_is_taken_over_by_the_slow_path_only(dynamodb: Any) -> None:
    locks.acquire(dynamodb, TABLE, [TRUST], "crashed", lease_seconds=-10)
    assert locks.acquire_if_unchanged(dynamodb, TABLE, {TRUST: "h"}, "exec-b") is None
    assert locks.acquire(dynamodb, TABLE, [TRUST], "exec-b")["owner"] == "exec-b"


def test_release_leaves_a_lock_someone_took_over_and_still_writes_the_rest(dynamodb: Any) -> None:
    locks.acquire(dynamodb, TABLE, [TRUST, POLICY], "slow", lease_seconds=-10)
    locks.acquire(dynamodb, TABLE, [TRUST], "taker")
    entry = {"clusterId": "c1", "state": registry.READY, "externalIdFingerprint": "redacted:sha256:aa"}
    result = locks.release(dynamodb, TABLE, [TRUST, POLICY], "slow", also=[registry.update_item(REGISTRY, entry)])
    assert result["released"] == [POLICY]
    assert item(dynamodb, TRUST)["owner"] == "taker"
    assert registry.get(dynamodb, REGISTRY, "c1")["state"] == registry.READY


def test_registry_upsert_keeps_created_at_and_every_former_fingerprint(dynamodb: Any) -> None:
    first = {"clusterId": "c1", "state": registry.READY, "externalIdFingerprint": "redacted:sha256:aa"}
    registry.put(dynamodb, REGISTRY, first)
    created = registry.get(dynamodb, REGISTRY, "c1")["createdAt"]
    # a lost secret repaired with a new ID, written without reading first
    second = {**first, "externalIdFingerprint": "redacted:sha256:bb", "lastExecution": "exec-2"}
    dynamodb.transact_write_items(TransactItems=[registry.update_item(REGISTRY, second)])
    entry = registry.get(dynamodb, REGISTRY, "c1")
    assert entry["externalIdFingerprint"] == "redacted:sha256:bb"
    assert entry["formerExternalIdFingerprints"] == ["redacted:sha256:aa"]
    assert entry["createdAt"] == created and entry["lastExecution"] == "exec-2"
    assert not registry.differs(entry, second)
    assert registry.differs(entry, {**second, "buckets": ["other-bucket"]})
