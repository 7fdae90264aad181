"""The registry's fingerprint is the truth (issue 15 item 6): a secret overwritten by hand is
drift, never granted; fingerprints are keyed; records from before the key stay readable."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from atc_xaccount.redact import legacy_fingerprint
from atc_xaccount_cli.local.run import RunReport, run_audit
from tests.lifecycle.conftest import (
    DRIFT,
    FINGERPRINT_KEY,
    FIRST,
    ROOT,
    admits,
    deregistration,
    external_id,
    fingerprints_of,
    granted_ids,
    published,
    registration,
    registry_of,
    run,
    secret_name,
    targets,
)

CHOSEN = "attacker-chosen-external-id"


def with_secret(world: dict[str, Any], value: str) -> dict[str, Any]:
    """The world with the cluster's secret overwritten (whoever may write one secret)."""
    world = copy.deepcopy(world)
    world["accounts"]["123456789012"]["secrets"][secret_name(FIRST)] = value
    return world


@pytest.fixture(scope="module")
def overwritten(registered) -> dict[str, Any]:
    return with_secret(registered.world, CHOSEN)


@pytest.fixture(scope="module")
def audited(overwritten) -> RunReport:
    return run_audit(ROOT, copy.deepcopy(overwritten), parameters={"RepairDrift": "true"})


def test_a_replaced_secret_is_reported_and_never_granted(registered, overwritten, audited):
    assert audited.result.status == "SUCCEEDED", audited.cause_message
    kinds = {d["kind"]: d for e in published(audited, DRIFT) for d in e["detail"]["drift"]}
    assert kinds["ExternalIdSecretMismatch"]["repairable"] is False
    assert "TrustGrantMissing" not in kinds, "the registered ID is still granted: the trust is judged for it"
    assert audited.executions[1:] == [], "no repair runs"
    assert not admits(audited.world, CHOSEN), "the secret's new value opens nothing"
    assert admits(audited.world, external_id(registered.world, FIRST)), "the registered ID still works"
    assert registry_of(audited.world)[FIRST] == registry_of(overwritten)[FIRST]


def test_an_onboarding_refuses_a_secret_the_registry_does_not_know(overwritten):
    report = run([registration(FIRST)], overwritten)

    assert report.result.error == "ExternalIdSecretMismatch", report.cause_message
    assert secret_name(FIRST) in report.cause_message and CHOSEN not in report.cause_message
    assert report.calls["writes"] == 0
    assert targets(report.world) == targets(overwritten)


def test_fingerprints_are_keyed_with_a_key_the_deployment_keeps_in_secrets_manager(registered):
    ext_id = external_id(registered.world, FIRST)
    recorded = registry_of(registered.world)[FIRST]["externalIdFingerprint"]

    assert FINGERPRINT_KEY in registered.world["accounts"]["123456789012"]["secrets"]
    assert recorded == fingerprints_of(registered.world).of(ext_id)
    digest = hashlib.sha256(ext_id.encode()).hexdigest()
    assert digest[:16] not in recorded and recorded != legacy_fingerprint(ext_id), "not recoverable by hashing"
    history = json.dumps(registered.executions[0].to_json())
    assert digest[:16] not in history


def test_records_from_before_the_key_stay_readable(registered, sample_world):
    """A registry written with unkeyed fingerprints: audited in sync, deregistered exactly."""
    world = copy.deepcopy(registered.world)
    entry = world["accounts"]["123456789012"]["registry"][FIRST]
    entry["externalIdFingerprint"] = legacy_fingerprint(external_id(registered.world, FIRST))

    audit = run_audit(ROOT, copy.deepcopy(world), parameters={"RepairDrift": "false"})
    gone = run([deregistration(FIRST)], world)

    assert audit.result.output["clusters"] == [{"clusterId": FIRST, "drift": [], "repaired": False}]
    assert gone.result.status == "SUCCEEDED", gone.cause_message
    assert granted_ids(gone.world) == []
    assert targets(gone.world) == targets({"accounts": sample_world["accounts"]})
