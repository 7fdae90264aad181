"""External ID rotation as a workflow (issue 15 item 7), with the gates of Secrets Manager's
rotation protocol: start is idempotent, writes under the lock and leaves no pending ID when
it fails; finish proves the pending ID opens the role before withdrawing the current one,
and keeps an ID another cluster still uses."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.lifecycle.conftest import (
    CM,
    FIRST,
    S3,
    admits,
    external_id,
    fingerprints_of,
    iam_writes,
    load,
    registration,
    registry_of,
    run,
    secret_name,
    targets,
)

SECOND = "demo-cluster-2"


def rotation(cluster: str, phase: str, **envelope: Any) -> dict[str, Any]:
    """A whole `Rotate External ID` event from the cluster manager account."""
    event = load("cluster-registered.json")
    event.update({"detail-type": "Rotate External ID", **envelope})
    event["detail"] = {"clusterId": cluster, "clusterManagerAccountId": CM, "s3AccountId": S3, "phase": phase}
    return event


def versions(world: dict[str, Any], cluster: str = FIRST) -> dict[str, str]:
    """The cluster's secret by staging label (a world keeps AWSPENDING beside AWSCURRENT)."""
    value = world["accounts"]["123456789012"]["secrets"][secret_name(cluster)]
    return value if isinstance(value, dict) else {"AWSCURRENT": value}


@pytest.fixture(scope="module")
def started(registered) -> Any:
    report = run([rotation(FIRST, "start")], registered.world)
    assert report.result.status == "SUCCEEDED", report.cause_message
    return report


def test_start_grants_a_pending_id_beside_the_current_one_and_history_holds_neither(registered, started):
    current, pending = external_id(registered.world, FIRST), versions(started.world)["AWSPENDING"]

    assert pending != current
    assert admits(started.world, current), "the access key in use keeps working"
    assert admits(started.world, pending)
    history = json.dumps(started.executions[0].to_json()["history"])
    assert current not in history and pending not in history
    assert "AcquireLocks" in history and history.index("AcquireLocks") < history.index("RotateStart")


def test_start_again_reuses_the_pending_id_and_writes_nothing(started):
    again = run([rotation(FIRST, "start")], started.world)

    assert again.result.status == "SUCCEEDED", again.cause_message
    assert versions(again.world) == versions(started.world)
    assert iam_writes(again.calls) == {} and again.calls["by_operation"].get("secretsmanager:PutSecretValue") is None


def test_finish_withdraws_the_current_id_and_makes_the_pending_one_the_clusters(registered, started):
    old, new = external_id(registered.world, FIRST), versions(started.world)["AWSPENDING"]

    finished = run([rotation(FIRST, "finish")], started.world)

    assert finished.result.status == "SUCCEEDED", finished.cause_message
    assert versions(finished.world) == {"AWSCURRENT": new}
    assert admits(finished.world, new) and not admits(finished.world, old)
    entry = registry_of(finished.world)[FIRST]
    assert entry["externalIdFingerprint"] == fingerprints_of(finished.world).of(new)
    assert fingerprints_of(finished.world).of(old) in entry["formerExternalIdFingerprints"]


def test_a_failed_start_leaves_no_pending_id_and_finish_keeps_the_current_id(registered):
    current = external_id(registered.world, FIRST)
    failed = run([rotation(FIRST, "start")], registered.world, faults=["RotateStart/iam:UpdateAssumeRolePolicy=fail"])
    finish = run([rotation(FIRST, "finish")], failed.world)

    assert failed.result.status == "FAILED"
    assert versions(failed.world) == {"AWSCURRENT": current}, "no pending ID is left"
    assert finish.result.error == "PrerequisiteMissing", finish.cause_message
    assert admits(finish.world, current), "the current ID still opens the role"
    assert iam_writes(finish.calls) == {}


def test_finish_refuses_a_pending_id_the_trust_does_not_admit(registered):
    """A pending ID that never got its grant (a start that died midway): nothing is withdrawn."""
    world = copy.deepcopy(registered.world)
    current = external_id(registered.world, FIRST)
    world["accounts"]["123456789012"]["secrets"][secret_name(FIRST)] = {
        "AWSCURRENT": current,
        "AWSPENDING": "never-granted-pending-id",
    }

    report = run([rotation(FIRST, "finish")], world)

    assert report.result.error == "VerificationFailed", report.cause_message
    assert "pending external ID" in report.cause_message
    assert admits(report.world, current) and iam_writes(report.calls) == {}
    assert versions(report.world)["AWSCURRENT"] == current


def test_finish_keeps_an_id_another_cluster_still_uses(sample_world):
    shared = "shared-external-id-for-two-clusters"
    both = run([registration(FIRST, externalId=shared)], sample_world)
    both = run([registration(SECOND, externalId=shared)], both.world)
    started = run([rotation(FIRST, "start")], both.world)
    finished = run([rotation(FIRST, "finish")], started.world)

    assert finished.result.status == "SUCCEEDED", finished.cause_message
    assert admits(finished.world, shared), f"{SECOND} still opens the role with it"
    assert admits(finished.world, versions(finished.world)["AWSCURRENT"])
    assert finished.result.output["rotation"]["previousKeptFor"] == [SECOND]


def test_a_rotation_outside_the_pairs_or_for_another_account_is_refused(registered):
    far = rotation(FIRST, "start")
    far["detail"]["s3AccountId"] = "333333333333"
    forged = rotation(FIRST, "start", account="444444444444")

    refused = run([far], registered.world, parameters={})
    sent = run([forged], registered.world, parameters={"EventSourceAccounts": f"{CM},444444444444"})

    for report, pair in ((refused, f"{CM}:333333333333"), (sent, "444444444444")):
        assert report.result.error == "RequestNotAuthorized", report.cause_message
        assert pair in report.cause_message
        assert report.calls["writes"] == 0
        assert {a: targets(report.world)[a] for a in (CM, S3)} == targets(registered.world)
