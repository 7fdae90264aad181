"""Who may ask, end to end: the real workflows refuse before any call into a target account.

These runs use the emulator's own defaults (the sample pair only), not the scenario
parameters of the other lifecycle tests.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from atc_xaccount_cli.local.run import run_bulk
from tests.lifecycle.conftest import (
    CM,
    FIRST,
    ROOT,
    S3,
    admits,
    deregistration,
    external_id,
    registration,
    registry_of,
    relocated,
    run,
    targets,
)

OTHER_CM, FAR_S3 = "444444444444", "333333333333"
#: The emulator's defaults (AllowedAccountPairs = the sample pair), the bus also admitting OTHER_CM.
DEFAULTS: dict[str, str] = {"EventSourceAccounts": f"{CM},{OTHER_CM}"}


def with_far_s3_account(world: dict[str, Any]) -> dict[str, Any]:
    """The sample world plus a second, fully bootstrapped S3 account the pairs do not list."""
    world = copy.deepcopy(world)
    far = relocated(world, CM, FAR_S3)["accounts"][FAR_S3]
    far = json.loads(json.dumps(far).replace("atc-demo-transfers", "atc-far-transfers"))
    world["accounts"][FAR_S3] = far
    return world


def test_an_event_sent_for_another_account_is_refused_before_any_call(sample_world):
    forged = registration(FIRST)
    forged["account"] = OTHER_CM  # the bus admits OTHER_CM; the detail speaks for CM

    report = run([forged], sample_world, parameters=DEFAULTS)

    assert report.result.error == "RequestNotAuthorized", report.cause_message
    assert OTHER_CM in report.cause_message and CM in report.cause_message
    assert report.calls["total"] == 0 and report.calls["writes"] == 0
    assert targets(report.world) == targets(sample_world)
    assert FIRST not in registry_of(report.world)


def test_a_registration_outside_the_pairs_is_refused_with_zero_writes(sample_world):
    world = with_far_s3_account(sample_world)

    report = run([registration(FIRST, s3AccountId=FAR_S3, buckets=["atc-far-transfers"])], world, parameters={})

    assert report.result.error == "RequestNotAuthorized", report.cause_message
    assert f"{CM}:{FAR_S3}" in report.cause_message and "AllowedAccountPairs" in report.cause_message
    assert report.calls["total"] == 0
    assert targets(report.world) == targets(world)


def test_a_deregistration_outside_the_pairs_is_refused_and_the_grant_stays(sample_world):
    world = with_far_s3_account(sample_world)
    wide = {"AllowedAccountPairs": f"{CM}:*"}
    onboarded = run([registration(FIRST, s3AccountId=FAR_S3, buckets=["atc-far-transfers"])], world, parameters=wide)
    assert onboarded.result.status == "SUCCEEDED", onboarded.cause_message

    # The deployment no longer connects CM to FAR_S3: nothing there is touched, not even to revoke.
    report = run([deregistration(FIRST, s3AccountId=FAR_S3)], onboarded.world, parameters={})

    assert report.result.error == "RequestNotAuthorized", report.cause_message
    assert report.calls["writes"] == 0
    assert admits(report.world, external_id(onboarded.world, FIRST), s3=FAR_S3)
    assert registry_of(report.world)[FIRST]["state"] == "READY"


def test_a_bulk_row_outside_the_pairs_is_rejected_and_never_started(tmp_path, sample_world):
    world = with_far_s3_account(sample_world)
    rows = [
        {"clusterId": "bulk-near", "clusterManagerAccountId": CM, "s3AccountId": S3},
        {"clusterId": "bulk-far", "clusterManagerAccountId": CM, "s3AccountId": FAR_S3},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))

    report = run_bulk(ROOT, path, world)

    rows_out = {r["line"]: r for r in report.executions[0].bulk_report["rows"]}
    assert rows_out[1]["status"] == "SUCCEEDED", rows_out[1]
    assert rows_out[2]["status"] == "REJECTED"
    assert rows_out[2]["cause"].startswith("RequestNotAuthorized: ") and f"{CM}:{FAR_S3}" in rows_out[2]["cause"]
    assert report.world["accounts"][FAR_S3] == world["accounts"][FAR_S3], "nothing written in the far account"


def test_another_accounts_cluster_id_is_neither_moved_nor_deregistered(registered, sample_world):
    world = copy.deepcopy(registered.world)
    world["accounts"][OTHER_CM] = relocated(sample_world, OTHER_CM, S3)["accounts"][OTHER_CM]
    pairs = {**DEFAULTS, "AllowedAccountPairs": f"{CM}:{S3},{OTHER_CM}:{S3}"}
    before = external_id(registered.world, FIRST)

    taken = run([registration(FIRST, clusterManagerAccountId=OTHER_CM)], world, parameters=pairs)
    dropped = run([deregistration(FIRST, clusterManagerAccountId=OTHER_CM)], world, parameters=pairs)

    assert taken.result.error == "RequestNotAuthorized", taken.cause_message
    assert f"belongs to cluster manager account {CM}" in taken.cause_message
    assert taken.calls["writes"] == 0
    assert dropped.result.error == "RegistrationMismatch", dropped.cause_message
    assert dropped.calls["writes"] == 0
    for report in (taken, dropped):
        assert admits(report.world, before), "the owner's grant stays"
        assert registry_of(report.world)[FIRST]["clusterManagerAccountId"] == CM
        assert targets(report.world) == targets(world)
