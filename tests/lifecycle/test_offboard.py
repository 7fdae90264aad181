"""Deregistration through the real offboarding state machine.

One chain of runs, each starting from the world the previous one left: register A,
register B, deregister A, deregister B (the last), then deregister B again and a
cluster that was never registered.
"""

from __future__ import annotations

import pytest

from atc_xaccount_cli.local.run import RunReport
from tests.lifecycle.conftest import (
    ASSUME_POLICY_ARN,
    CM,
    FIRST,
    REVOKED,
    admits,
    deregistration,
    external_id,
    granted_ids,
    iam_writes,
    published,
    registration,
    registry_of,
    run,
    secret_name,
    secrets_of,
    targets,
    trust_of,
)

A, B = FIRST, "demo-cluster-2"


class Chain:
    """The runs of the lifecycle, in order."""

    def __init__(self, registered: RunReport) -> None:
        self.register_a = registered
        self.register_b = run([registration(B)], registered.world)
        self.deregister_a = run([deregistration(A)], self.register_b.world)
        self.deregister_b = run([deregistration(B)], self.deregister_a.world)
        self.nothing_to_do = run([deregistration(B), deregistration("never-registered-9")], self.deregister_b.world)


@pytest.fixture(scope="module")
def chain(registered: RunReport) -> Chain:
    return Chain(registered)


def test_both_registrations_succeed_before_anything_is_deregistered(chain):
    assert chain.register_b.result.status == "SUCCEEDED", chain.register_b.cause_message
    assert admits(chain.register_b.world, external_id(chain.register_b.world, A))
    assert admits(chain.register_b.world, external_id(chain.register_b.world, B))


def test_deregistering_a_keeps_b_granted_and_closes_the_door_for_a(chain):
    before, after = chain.register_b.world, chain.deregister_a.world
    a_id, b_id = external_id(before, A), external_id(before, B)

    assert chain.deregister_a.result.status == "SUCCEEDED", chain.deregister_a.cause_message
    assert admits(after, b_id), "B's grant must survive A's deregistration"
    assert not admits(after, a_id), "A's external ID must no longer admit the node role"
    assert granted_ids(after) == [b_id]
    assert external_id(after, B) == b_id
    assert secret_name(A) not in secrets_of(after)


def test_deregistering_a_leaves_foreign_statements_and_the_shared_policy_alone(chain, sample_world):
    before, after = chain.register_b.world, chain.deregister_a.world

    assert trust_of(after)["Statement"][:2] == trust_of(sample_world)["Statement"], (
        "the EC2 and partner statements must stay exactly as they were"
    )
    assert after["accounts"][CM] == before["accounts"][CM], "B still needs atc-s3-assume-role, attached"
    assert iam_writes(chain.deregister_a.calls) == {"iam:UpdateAssumeRolePolicy": 1}


def test_deregistering_a_publishes_revoked_and_marks_only_a_revoked(chain):
    revoked = published(chain.deregister_a, REVOKED)

    assert [e["detail"]["clusterId"] for e in revoked] == [A]
    assert revoked[0]["detail"]["nothingToDo"] is False
    registry = registry_of(chain.deregister_a.world)
    assert registry[A]["state"] == "REVOKED"
    assert registry[B]["state"] == "READY"


def test_deregistering_the_last_cluster_restores_both_accounts_exactly(chain, sample_world):
    report = chain.deregister_b

    assert report.result.status == "SUCCEEDED", report.cause_message
    assert targets(report.world) == sample_world["accounts"], (
        "trust restored, atc-s3-assume-role detached and deleted: the accounts as before the first registration"
    )
    cm = report.world["accounts"][CM]
    assert ASSUME_POLICY_ARN not in cm["roles"]["atc-node"]["attached"]
    assert "atc-s3-assume-role" not in cm["policies"]


def test_deregistering_the_last_cluster_forgets_its_secret_and_revokes_it(chain):
    world = chain.deregister_b.world

    assert secrets_of(world) == {}
    assert {cluster: entry["state"] for cluster, entry in registry_of(world).items()} == {A: "REVOKED", B: "REVOKED"}
    assert iam_writes(chain.deregister_b.calls) == {
        "iam:UpdateAssumeRolePolicy": 1,
        "iam:DetachRolePolicy": 1,
        "iam:DeletePolicy": 1,
    }


@pytest.mark.parametrize(
    ("index", "cluster", "reason"),
    [
        pytest.param(0, B, "already deregistered", id="deregistered-twice"),
        pytest.param(1, "never-registered-9", "never registered", id="never-registered"),
    ],
)
def test_nothing_to_do_succeeds_says_so_and_writes_nothing(chain, index, cluster, reason):
    execution = chain.nothing_to_do.executions[index]

    assert execution.result.status == "SUCCEEDED", execution.cause_message
    assert execution.result.output["nothingToDo"] is True
    assert execution.result.output["reason"] == reason
    assert execution.calls["writes"] == 0, execution.calls
    revoked = published(execution, REVOKED)
    assert len(revoked) == 1
    assert revoked[0]["detail"]["clusterId"] == cluster
    assert revoked[0]["detail"]["nothingToDo"] is True
    assert revoked[0]["detail"]["reason"] == reason


def test_nothing_to_do_leaves_the_world_as_it_was(chain):
    assert chain.nothing_to_do.calls["writes"] == 0
    assert chain.nothing_to_do.world == chain.deregister_b.world


# --- an external ID changed by a later registration ------------------------------------------


ROTATED = "operator-rotated-id:2026/12"


@pytest.fixture(scope="module")
def rotated(registered: RunReport) -> tuple[RunReport, RunReport]:
    """demo-cluster-1 registered again with an operator-chosen ID, then deregistered."""
    again = run([registration(A, externalId=ROTATED)], registered.world)
    gone = run([deregistration(A)], again.world)
    return again, gone


def test_registering_again_with_a_new_external_id_stores_and_grants_it(rotated):
    again, _ = rotated

    assert again.result.status == "SUCCEEDED", again.cause_message
    assert external_id(again.world, A) == ROTATED
    assert admits(again.world, ROTATED)


def test_the_replaced_external_id_no_longer_admits_the_node_role(registered, rotated):
    again, _ = rotated

    assert not admits(again.world, external_id(registered.world, A))


def test_deregistering_a_cluster_whose_id_was_replaced_restores_the_accounts(rotated, sample_world):
    _, gone = rotated

    assert gone.result.status == "SUCCEEDED", gone.cause_message
    assert targets(gone.world) == sample_world["accounts"]
