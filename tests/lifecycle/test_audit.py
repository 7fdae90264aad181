"""The drift audit on the real audit state machine: each kind of hand edit is reported
with specifics, and the repair (re-running onboarding) restores access."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from atc_xaccount_cli.local.run import RunReport, run_audit
from tests.lifecycle.conftest import (
    ACCESS_ARN,
    ASSUME_POLICY_ARN,
    AUTOMATION,
    CM,
    DRIFT,
    FINGERPRINT_KEY,
    FIRST,
    ROOT,
    S3,
    admits,
    deregistration,
    external_id,
    fingerprints_of,
    granted_ids,
    published,
    registry_of,
    run,
    secrets_of,
    targets,
    trust_of,
)

Edit = Callable[[dict[str, Any]], None]
UNIQUE_ID = "AROA1234567890EXAMPLE"


def detach_policy(accounts: dict[str, Any]) -> None:
    accounts[CM]["roles"]["atc-node"]["attached"] = []


def remove_access_role_from_policy(accounts: dict[str, Any]) -> None:
    statement = accounts[CM]["policies"]["atc-s3-assume-role"]["document"]["Statement"][0]
    statement["Resource"] = ["arn:aws:iam::999999999999:role/someone-else"]


def delete_policy(accounts: dict[str, Any]) -> None:
    del accounts[CM]["policies"]["atc-s3-assume-role"]
    accounts[CM]["roles"]["atc-node"]["attached"] = []


def remove_trust_grant(accounts: dict[str, Any]) -> None:
    trust = accounts[S3]["roles"]["atc-s3-access-keys"]["trust"]
    trust["Statement"] = [s for s in trust["Statement"] if not s.get("Sid", "").startswith("AtcXaccount")]


def replace_node_role(accounts: dict[str, Any]) -> None:
    """atc-node deleted and recreated: IAM shows the old role's unique ID in the grant."""
    grant = accounts[S3]["roles"]["atc-s3-access-keys"]["trust"]["Statement"][-1]
    assert grant["Principal"] == {"AWS": f"arn:aws:iam::{CM}:role/atc-node"}
    grant["Principal"] = {"AWS": UNIQUE_ID}


def lose_secret(accounts: dict[str, Any]) -> None:
    """The cluster's secret is gone (the deployment's fingerprint key is not the cluster's)."""
    secrets = accounts[AUTOMATION]["secrets"]
    for name in [n for n in secrets if n != FINGERPRINT_KEY]:
        del secrets[name]


def drifted(world: dict[str, Any], *edits: Edit) -> dict[str, Any]:
    world = copy.deepcopy(world)
    for edit in edits:
        edit(world["accounts"])
    return world


def audit(world: dict[str, Any], *, repair: bool = False) -> RunReport:
    return run_audit(ROOT, copy.deepcopy(world), parameters={"RepairDrift": "true" if repair else "false"})


def drift_of(report: RunReport, cluster: str = FIRST) -> dict[str, dict[str, Any]]:
    """The audit's findings for one cluster, by kind."""
    clusters = {c["clusterId"]: c for c in report.result.output["clusters"]}
    return {d["kind"]: d for d in clusters[cluster]["drift"]}


#: Two independent edits per audit run (one on each side), each a kind the audit must name.
DRIFTS = {
    "detached+secret": (detach_policy, lose_secret),
    "resource+grant": (remove_access_role_from_policy, remove_trust_grant),
}


@pytest.fixture(scope="module")
def audits(registered) -> dict[str, RunReport]:
    return {name: audit(drifted(registered.world, *edits)) for name, edits in DRIFTS.items()}


def restrict_assume_policy_statement(accounts: dict[str, Any]) -> None:
    """A hand edit of our statement: still our Sid, no longer our shape."""
    statement = accounts[CM]["policies"]["atc-s3-assume-role"]["document"]["Statement"][0]
    statement["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


@pytest.fixture(scope="module")
def repaired(registered) -> RunReport:
    """The audit with repair on, over a deleted policy and a removed trust grant."""
    return audit(drifted(registered.world, delete_policy, remove_trust_grant), repair=True)


@pytest.fixture(scope="module")
def refused(registered) -> RunReport:
    """The audit with repair on, over drift only a human may resolve."""
    return audit(drifted(registered.world, replace_node_role, restrict_assume_policy_statement), repair=True)


@pytest.mark.parametrize(
    ("run_name", "kind", "account", "resource", "detail"),
    [
        pytest.param("detached+secret", "AssumePolicyDetached", CM, ASSUME_POLICY_ARN, "atc-node", id="detached"),
        pytest.param(
            "resource+grant", "AssumePolicyResourceMissing", CM, ASSUME_POLICY_ARN, ACCESS_ARN, id="resource-removed"
        ),
        pytest.param("repair", "AssumePolicyMissing", CM, ASSUME_POLICY_ARN, "does not exist", id="policy-deleted"),
        pytest.param("resource+grant", "TrustGrantMissing", S3, ACCESS_ARN, "no longer admits", id="grant-removed"),
        pytest.param("refused", "NodeRoleReplaced", S3, ACCESS_ARN, UNIQUE_ID, id="node-role-replaced"),
        pytest.param(
            "refused",
            "AssumePolicyStatementModified",
            CM,
            ASSUME_POLICY_ARN,
            "Condition",
            id="assume-statement-modified",
        ),
        pytest.param("detached+secret", "ExternalIdSecretMissing", None, None, "secret", id="secret-missing"),
    ],
)
def test_each_kind_of_drift_is_detected_with_specifics(
    audits, repaired, refused, run_name, kind, account, resource, detail
):
    report = {"repair": repaired, "refused": refused}.get(run_name) or audits[run_name]
    found = drift_of(report)

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert kind in found, found
    if account is not None:
        assert found[kind]["account"] == account
        assert found[kind]["resource"] == resource
    assert detail in found[kind]["detail"]


@pytest.mark.parametrize("run_name", sorted(DRIFTS))
def test_audit_reports_exactly_the_drift_made_and_changes_nothing(registered, audits, run_name):
    report = audits[run_name]

    assert len(drift_of(report)) == 2, drift_of(report)
    assert report.calls["writes"] == 0, "the audit without repair only reads"
    assert targets(report.world) == targets(drifted(registered.world, *DRIFTS[run_name]))
    events = published(report, DRIFT)
    assert [e["detail"]["clusterId"] for e in events] == [FIRST]
    assert {d["kind"] for d in events[0]["detail"]["drift"]} == set(drift_of(report))


def test_repair_re_runs_onboarding_and_restores_the_accounts_exactly(registered, repaired):
    assert [(e.machine, e.result.status) for e in repaired.executions] == [
        ("AuditStateMachine", "SUCCEEDED"),
        ("OnboardStateMachine", "SUCCEEDED"),
    ], [e.cause_message for e in repaired.executions]
    assert repaired.result.output["clusters"][0]["repaired"] is True
    assert targets(repaired.world) == targets(registered.world)
    assert secrets_of(repaired.world) == secrets_of(registered.world), "the cluster keeps its external ID"


def test_repair_never_rewrites_what_a_human_must_decide(registered, refused):
    assert [(e.machine, e.result.status) for e in refused.executions] == [("AuditStateMachine", "SUCCEEDED")]
    assert refused.result.output["clusters"][0]["repaired"] is False
    assert refused.calls["writes"] == 0
    expected = drifted(registered.world, replace_node_role, restrict_assume_policy_statement)
    assert targets(refused.world) == targets(expected)
    assert {d["kind"]: d["repairable"] for d in drift_of(refused).values()} == {
        "NodeRoleReplaced": False,
        "AssumePolicyStatementModified": False,
    }


def test_a_hand_edited_grant_is_its_own_kind_of_drift(registered):
    def restrict_grant(accounts: dict[str, Any]) -> None:
        grant = accounts[S3]["roles"]["atc-s3-access-keys"]["trust"]["Statement"][-1]
        grant["Condition"]["IpAddress"] = {"aws:SourceIp": "10.0.0.0/8"}

    report = audit(drifted(registered.world, restrict_grant), repair=True)
    found = drift_of(report)
    assert set(found) == {"GrantModified"}
    assert "IpAddress aws:SourceIp" in found["GrantModified"]["detail"]
    assert [e.machine for e in report.executions] == ["AuditStateMachine"], "never repaired"
    assert targets(report.world) == targets(drifted(registered.world, restrict_grant))


def test_a_second_audit_after_the_repair_finds_no_drift(repaired):
    second = audit(repaired.world)

    assert second.result.status == "SUCCEEDED", second.cause_message
    assert second.result.output["clusters"] == [{"clusterId": FIRST, "drift": [], "repaired": False}]
    assert published(second, DRIFT) == []


def test_a_lost_secret_is_repaired_and_deregistration_still_removes_every_id(registered, sample_world):
    lost = external_id(registered.world, FIRST)
    report = audit(drifted(registered.world, lose_secret), repair=True)

    assert [e.result.status for e in report.executions] == ["SUCCEEDED", "SUCCEEDED"]
    new = external_id(report.world, FIRST)
    assert new != lost and admits(report.world, new), "the repair stores and grants a new ID"
    # The lost ID is what Cluster Manager's access key still presents: it keeps working
    # until the operator switches the key to the new ID (as in a rotation).
    assert admits(report.world, lost)
    entry = registry_of(report.world)[FIRST]
    assert entry["formerExternalIdFingerprints"] == [fingerprints_of(report.world).of(lost)]

    gone = run([deregistration(FIRST)], report.world)

    assert gone.result.status == "SUCCEEDED", gone.cause_message
    assert granted_ids(gone.world) == [], "the lost ID is removed by its fingerprint"
    assert trust_of(gone.world) == trust_of(sample_world)
