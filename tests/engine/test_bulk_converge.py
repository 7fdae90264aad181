"""A bulk file converges by document (issue 18 item 1, docs/converge.md "Bulk: reserve, then
onboard"): every row's intents are queued before any row runs, so each shared document is
written once for the whole file; a reservation is served only by its own bulk's rows."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from atc_xaccount import bulk as bulk_names
from atc_xaccount.trust import grant_external_ids
from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, Emulator
from atc_xaccount_cli.local.run import BULK, ONBOARD
from bench import bulk
from tests.engine.conftest import ROOT, _is_write

LOCKS = "LocksTable"


@contextmanager
def emulator_for(generated: dict[str, Any]) -> Iterator[Emulator]:
    with Emulator(ROOT, parameters=generated["parameters"]) as emulator:
        emulator.seed(copy.deepcopy(generated["world"]))
        yield emulator


def run_file(
    emulator: Emulator, rows: list[dict[str, Any]], name: str = "rows.jsonl", execution: str | None = None
) -> dict[str, Any]:
    """One bulk execution of `rows` on this emulator: its report, IAM writes and the world after."""
    bucket = emulator.buckets["BulkBucket"]
    key = f"uploads/{name}"
    emulator.client("s3").put_object(Bucket=bucket, Key=key, Body="".join(json.dumps(r) + "\n" for r in rows))
    with emulator.counting() as ledger:
        result = emulator.follow(emulator.start({"bucket": bucket, "key": key}, BULK, execution), timeout=900)
        calls = ledger.summary()
    accounts = sorted({r["clusterManagerAccountId"] for r in rows} | {r["s3AccountId"] for r in rows})
    writes = {k: n for k, n in calls["by_operation"].items() if k.startswith("iam:") and _is_write(k)}
    report: dict[str, Any] = {"rows": []}
    if result.status == "SUCCEEDED":
        location = result.output["report"]["report"].removeprefix("s3://").partition("/")[2]
        report = json.loads(emulator.client("s3").get_object(Bucket=bucket, Key=location)["Body"].read())
    return {
        "status": result.status,
        "rows": {r["clusterId"]: r for r in report["rows"]},
        "writes": writes,
        "world": emulator.snapshot([*accounts, AUTOMATION_ACCOUNT]),
    }


def granted(world: dict[str, Any], row: dict[str, Any]) -> bool:
    trust = world["accounts"][row["s3AccountId"]]["roles"][bulk.ACCESS_ROLE]["trust"]
    return row["externalId"] in grant_external_ids(trust, bulk.node_arn(row["clusterManagerAccountId"]))


def queue_item(emulator: Emulator, key: str) -> dict[str, Any]:
    table = emulator.tables[LOCKS]
    return (
        emulator.client("dynamodb").get_item(TableName=table, Key={"lockKey": {"S": f"queue#{key}"}}).get("Item") or {}
    )


def trust_key(row: dict[str, Any]) -> str:
    return f"trust#{row['s3AccountId']}#{bulk.ACCESS_ROLE}"


@pytest.fixture(scope="module")
def converged() -> dict[str, Any]:
    """24 rows, 4 cluster manager accounts x 4 S3 accounts (every access role shared by the 4
    managers, every assume policy naming the 4 access roles), shuffled; then the same file again."""
    generated = bulk.plan(24, 4, 4)
    with emulator_for(generated) as emulator:
        first = run_file(emulator, generated["rows"])
        again = run_file(emulator, generated["rows"], "again.jsonl")
    assert first["status"] == again["status"] == "SUCCEEDED"
    return {"generated": generated, "first": first, "again": again}


def test_a_bulk_file_writes_each_shared_document_once(converged: dict[str, Any]) -> None:
    writes = converged["first"]["writes"]
    # Today's main (one onboarding per row, 10 at a time): each document once per wave that
    # meets it, and a policy version per access role added.
    assert writes == {"iam:CreatePolicy": 4, "iam:AttachRolePolicy": 4, "iam:UpdateAssumeRolePolicy": 4}, writes


def test_every_row_succeeds_and_every_grant_is_there(converged: dict[str, Any]) -> None:
    rows, world = converged["first"]["rows"], converged["first"]["world"]
    assert {c: r["status"] for c, r in rows.items() if r["status"] != "SUCCEEDED"} == {}
    assert len(rows) == 24
    assert [r["clusterId"] for r in converged["generated"]["rows"] if not granted(world, r)] == []
    for k in range(4):
        policy = world["accounts"][bulk.cm_account(k)]["policies"]["atc-s3-assume-role"]
        assert policy["versions"] == 1
        assert len(policy["document"]["Statement"][0]["Resource"]) == 4


def test_the_same_file_again_writes_nothing(converged: dict[str, Any]) -> None:
    again = converged["again"]
    assert again["writes"] == {}
    assert {r["status"] for r in again["rows"].values()} == {"SUCCEEDED"}

    def targets(world: dict[str, Any]) -> dict[str, Any]:
        return {a: s for a, s in world["accounts"].items() if a != AUTOMATION_ACCOUNT}

    assert targets(again["world"]) == targets(converged["first"]["world"])


def test_a_row_preflight_rejects_gets_no_grant_and_the_others_converge() -> None:
    generated = bulk.plan(6, 2, 2)
    rows = generated["rows"]
    # Its bucket is not one the access policy grants: Preflight refuses it, in both phases.
    bad = {**rows[0], "clusterId": "bulk-refused", "buckets": ["not-granted-bucket"], "externalId": "R" * 32}
    with emulator_for(generated) as emulator:
        ran = run_file(emulator, [*rows[:3], bad, *rows[3:]])
    assert ran["status"] == "SUCCEEDED"
    assert ran["rows"]["bulk-refused"]["status"] == "FAILED"
    assert ran["rows"]["bulk-refused"]["cause"].startswith("VerificationFailed")
    assert not granted(ran["world"], bad)
    assert [r["clusterId"] for r in rows if not granted(ran["world"], r)] == []
    assert {c: r["status"] for c, r in ran["rows"].items() if c != "bulk-refused"} == dict.fromkeys(
        (r["clusterId"] for r in rows), "SUCCEEDED"
    )
    assert ran["writes"]["iam:UpdateAssumeRolePolicy"] == 2


def test_a_row_failing_after_another_commit_served_it_is_undone() -> None:
    """A reserved row whose grant another row's commit already wrote, then whose own Preflight
    fails in phase 2: its compensation withdraws it and removes exactly its grant and secret."""
    generated = bulk.plan(4, 1, 2)
    rows = generated["rows"]
    victim = rows[-1]
    served = threading.Event()

    with emulator_for(generated) as emulator:

        def before_call(step: str, key: str, params: dict[str, Any]) -> None:
            execution = emulator.dispatcher.current_execution or ""
            if step != "PreflightFunction" or key != "secretsmanager:GetSecretValue":
                return
            if not execution.endswith(f"-{len(rows)}") or victim["clusterId"] not in str(params):
                return
            item = queue_item(emulator, trust_key(victim))
            if f"i#{victim['clusterId']}" not in item and f"r#{victim['clusterId']}" not in item:
                return  # phase 1: not reserved yet
            for _ in range(300):  # phase 2: wait until another row's commit wrote its grant
                if f"r#{victim['clusterId']}" in queue_item(emulator, trust_key(victim)):
                    served.set()
                    break
                time.sleep(0.1)
            raise ClientError({"Error": {"Code": "ServiceFailure", "Message": "injected"}}, "GetSecretValue")

        emulator.dispatcher.before_call = before_call
        ran = run_file(emulator, rows)
    assert ran["status"] == "SUCCEEDED"
    assert served.is_set(), "another row's commit served the victim before its Preflight failed"
    world = ran["world"]
    assert ran["rows"][victim["clusterId"]]["status"] == "FAILED"
    assert not granted(world, victim)
    assert all(granted(world, r) for r in rows[:-1])
    assert {ran["rows"][r["clusterId"]]["status"] for r in rows[:-1]} == {"SUCCEEDED"}
    secrets = world["accounts"][AUTOMATION_ACCOUNT].get("secrets", {})
    assert not any(f"/{victim['clusterId']}/" in name for name in secrets)


def test_reservations_are_served_only_by_their_own_bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk whose rows never run (here: no onboarding can start) leaves its reservations
    queued; another writer of the same documents does not serve them, and drops them once
    they have expired."""
    from atc_xaccount import queue

    generated = bulk.plan(3, 1, 1)
    rows = generated["rows"]
    with emulator_for(generated) as emulator:

        def before_call(step: str, key: str, params: dict[str, Any]) -> None:
            if key == "states:StartExecution" and ONBOARD in str(params):
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "StartExecution")

        emulator.dispatcher.before_call = before_call
        aborted = run_file(emulator, rows)
        assert aborted["status"] == "FAILED"  # the Map could start no row: the bulk stops after phase 1
        assert aborted["writes"] == {}
        reserved = queue_item(emulator, trust_key(rows[0]))
        assert sorted(k for k in reserved if k.startswith("i#")) == sorted(f"i#{r['clusterId']}" for r in rows)
        emulator.dispatcher.before_call = None

        other = {**rows[0], "clusterId": "plain-one", "externalId": "P" * 32}
        alone = emulator.follow(emulator.start(other))
        assert alone.status == "SUCCEEDED", alone.error
        world = emulator.snapshot([rows[0]["s3AccountId"], AUTOMATION_ACCOUNT])
        assert granted(world, other)
        assert [r["clusterId"] for r in rows if granted(world, r)] == []

        later = queue.now_ms() + (queue.RESERVATION_SECONDS + 60) * 1000
        monkeypatch.setattr(queue, "now_ms", lambda: later)
        another = {**rows[0], "clusterId": "plain-two", "externalId": "Q" * 32}
        assert emulator.follow(emulator.start(another)).status == "SUCCEEDED"
        left = queue_item(emulator, trust_key(rows[0]))
        assert [k for k in left if k.startswith("i#")] == []
        world = emulator.snapshot([rows[0]["s3AccountId"]])
        assert [r["clusterId"] for r in rows if granted(world, r)] == []


def test_a_row_whose_onboarding_never_starts_keeps_nothing() -> None:
    """Its onboarding cannot start (here: its name is taken): the bulk withdraws its
    reservations and removes what another row's commit wrote for it, and its secret."""
    generated = bulk.plan(4, 1, 2)
    rows = generated["rows"]
    victim = rows[-1]
    with emulator_for(generated) as emulator:
        taken = bulk_names.child_name("the-bulk", len(rows))
        blocker = emulator.follow(emulator.start({"not": "an event"}, ONBOARD, taken))
        assert blocker.status == "FAILED"
        ran = run_file(emulator, rows, execution="the-bulk")
        left = queue_item(emulator, trust_key(victim))
    assert ran["status"] == "SUCCEEDED"
    assert ran["rows"][victim["clusterId"]]["status"] == "FAILED"
    world = ran["world"]
    assert not granted(world, victim)
    assert all(granted(world, r) for r in rows[:-1])
    assert not any(victim["clusterId"] in k for k in left)
    secrets = world["accounts"][AUTOMATION_ACCOUNT].get("secrets", {})
    assert not any(f"/{victim['clusterId']}/" in name for name in secrets)
