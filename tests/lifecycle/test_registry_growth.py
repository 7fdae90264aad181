"""Registry growth: a deregistered cluster's record expires (issue 16 item 8).

REVOKED records were never removed, and the audit pages over every item: at ~113,000
items its history passed 25,000 events. A REVOKED record now carries `expiresAt`, the
table's TTL attribute, 30 days out; a re-registration (or what a failed compensation
leaves on it) takes it off again, so only records nobody needs expire.
"""

from __future__ import annotations

import time

from atc_xaccount.registry import EXPIRES_AT, REVOKED_RETENTION_SECONDS
from atc_xaccount_cli.local.engine import Emulator
from atc_xaccount_cli.local.template import load_yaml
from tests.lifecycle.conftest import FIRST, ROOT, deregistration, registration, registry_of, run


def test_a_deregistered_cluster_s_record_expires_and_a_re_registration_keeps_it(registered):
    before = time.time()
    revoked = run([deregistration(FIRST)], registered.world)
    assert revoked.result.status == "SUCCEEDED", revoked.cause_message

    entry = registry_of(revoked.world)[FIRST]
    assert entry["state"] == "REVOKED"
    assert int(before) + REVOKED_RETENTION_SECONDS <= entry[EXPIRES_AT] <= time.time() + REVOKED_RETENTION_SECONDS

    again = run([registration(FIRST)], revoked.world)
    assert again.result.status == "SUCCEEDED", again.cause_message
    entry = registry_of(again.world)[FIRST]
    assert entry["state"] == "READY" and EXPIRES_AT not in entry, "a registered cluster never expires"


def test_the_registry_table_expires_records_on_that_attribute():
    table = load_yaml(ROOT / "template.yaml")["Resources"]["ClusterRegistryTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": EXPIRES_AT, "Enabled": True}
    with Emulator(ROOT) as emulator:
        described = emulator.client("dynamodb").describe_time_to_live(TableName=emulator.registry_table)
    assert described["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": EXPIRES_AT}
