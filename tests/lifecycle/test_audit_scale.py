"""The audit at scale: a page of the registry at a time, and one cluster's failure is that
cluster's finding. Its own module, so the test runner can run it beside the other audits."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from atc_xaccount_cli.local.run import RunReport, run_audit
from tests.lifecycle.conftest import AUTOMATION, FIRST, ROOT

# --- at scale: a page at a time, and one cluster's failure is that cluster's finding -----

UNBOOTSTRAPPED = "999999999999"
MANY = 300
#: The emulator's payload limit, lowered: 300 registered clusters (~250 bytes each) in one
#: state pass it; one page of them does not.
SMALL_PAYLOAD = 48 * 1024


def many_registered(registered: RunReport, count: int, unreachable: int) -> dict[str, Any]:
    """The onboarded world with `count` more registry entries; `unreachable` of them name an
    S3 account whose automation role was never deployed (no bootstrap stack instance)."""
    world = copy.deepcopy(registered.world)
    entries = world["accounts"][AUTOMATION]["registry"]
    template = entries[FIRST]
    for i in range(count):
        entry = copy.deepcopy(template)
        entry["clusterId"] = f"many-{i:04d}"
        if i < unreachable:
            entry["s3AccountId"] = UNBOOTSTRAPPED
        entries[entry["clusterId"]] = entry
    return world


@pytest.fixture(scope="module")
def audited_many(registered) -> RunReport:
    world = many_registered(registered, MANY, unreachable=3)
    return run_audit(ROOT, world, parameters={"RepairDrift": "false"}, payload_limit=SMALL_PAYLOAD)


def test_an_audit_of_hundreds_of_clusters_stays_under_the_payload_limit(audited_many):
    report = audited_many
    assert report.result.status == "SUCCEEDED", (report.result.error, report.cause_message)
    tally = report.result.output
    assert tally["audited"] == MANY + 1
    assert tally["inSync"] + tally["drifted"] + tally["failed"] == MANY + 1
    assert len(tally["clusters"]) == 50 and tally["clustersOmitted"] == MANY + 1 - 50
    assert 0 < report.largest_payload <= SMALL_PAYLOAD


def test_an_unreachable_account_is_that_clusters_finding_and_the_others_still_run(audited_many):
    tally = audited_many.result.output
    assert tally["failed"] == 3
    failed = [c for c in tally["clusters"] if c.get("failed")]
    assert sorted(c["clusterId"] for c in failed) == ["many-0000", "many-0001", "many-0002"]
    for cluster in failed:
        # The account's automation role does not exist: the step's own error, not a drift.
        assert "atc-xaccount-automation" in cluster["failed"]["cause"], cluster
        assert len(cluster["failed"]["cause"]) < 600
    assert tally["drifted"] == MANY - 3, "the copies have no grant and no secret of their own"
    assert tally["inSync"] == 1
