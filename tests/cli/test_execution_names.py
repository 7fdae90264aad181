"""Execution names: a duplicate of one request is the same execution; a registration after a
deregistration is a new one (Step Functions refuses a name it kept, for 90 days, even closed)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from moto import mock_aws

from atc_xaccount import registry
from atc_xaccount_cli.aws.commands import execution_name

EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "cluster-registered.json").read_text())
TABLE = "registry"


def test_the_same_event_in_the_same_generation_has_the_same_name():
    assert execution_name("register", EVENT, 0) == execution_name("register", json.loads(json.dumps(EVENT)), 0)
    assert execution_name("register", EVENT, 0).startswith("register-demo-cluster-1-")


def test_a_new_generation_or_another_event_is_another_name():
    names = {
        execution_name("register", EVENT, 0),
        execution_name("register", EVENT, 1),
        execution_name("register", {**EVENT, "id": "another"}, 0),
    }
    assert len(names) == 3
    assert all(len(name) <= 80 for name in names), "Step Functions' limit"


def test_a_deregistration_is_about_the_generation_it_ends():
    assert registry.generation(None) == 0
    assert registry.generation({"state": "READY"}) == 0
    assert registry.generation({"state": "READY", "generation": 2}) == 2
    # Its duplicate arrives after it completed (REVOKED, generation moved on): same name as it.
    assert registry.generation({"state": "REVOKED", "generation": 1}, deregistering=True) == 0
    assert registry.generation({"state": "REVOKED", "generation": 1}) == 1


@mock_aws
def test_a_completed_deregistration_moves_the_generation_once_even_if_retried():
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "clusterId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "clusterId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=TABLE, Item={"clusterId": {"S": "c1"}, "state": {"S": "READY"}})

    registry.set_state(dynamodb, TABLE, "c1", registry.REVOKED, "deregister-1")
    registry.set_state(dynamodb, TABLE, "c1", registry.REVOKED, "deregister-1")  # a retried Forget
    assert registry.get(dynamodb, TABLE, "c1")["generation"] == 1

    registry.set_state(dynamodb, TABLE, "c1", registry.READY, "register-2")
    registry.set_state(dynamodb, TABLE, "c1", registry.REVOKED, "deregister-2")
    entry = registry.get(dynamodb, TABLE, "c1")
    assert (entry["state"], entry["generation"]) == (registry.REVOKED, 2)
    registry.set_state(dynamodb, TABLE, "c1", registry.REVOKED, "deregister-3", error="failed")
    assert registry.get(dynamodb, TABLE, "c1")["generation"] == 2, "a failed one does not count"
