"""External ID custody in Secrets Manager (moto): generate once, reuse, let the event override."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from atc_xaccount import external_ids
from atc_xaccount.extid import MIN_GENERATED_LENGTH
from tests.ops.conftest import REGION, watch

CLUSTER = "demo-cluster-1"
NAME = external_ids.secret_name("atc-xaccount", CLUSTER)
OPERATOR_ID = "operator-chosen-ID:2026/11@atc"
pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def secrets() -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def ensure(secrets: Any, provided: str | None = None, *, dry_run: bool = False) -> dict[str, Any]:
    return external_ids.ensure_external_id(secrets, name=NAME, cluster_id=CLUSTER, provided=provided, dry_run=dry_run)


def stored(secrets: Any) -> str:
    return secrets.get_secret_value(SecretId=NAME)["SecretString"]


def test_first_call_stores_a_generated_id_tagged_with_the_cluster(secrets):
    record = ensure(secrets)

    value = stored(secrets)
    assert len(value) >= MIN_GENERATED_LENGTH
    assert value.isalnum()
    described = secrets.describe_secret(SecretId=NAME)
    assert {"Key": "atc-xaccount:cluster-id", "Value": CLUSTER} in described["Tags"]
    assert (record["action"], record["generated"]) == ("created", True)
    assert record["secretArn"] == described["ARN"]
    assert value not in json.dumps(record)


def test_second_call_reuses_the_stored_id_without_writing(secrets):
    ensure(secrets)
    first = stored(secrets)
    calls = watch(secrets)

    record = ensure(secrets)

    assert record["action"] == "unchanged"
    assert calls.operations == ["GetSecretValue"]
    assert stored(secrets) == first
    assert first not in json.dumps(record)


def test_two_clusters_get_different_ids(secrets):
    ensure(secrets)
    external_ids.ensure_external_id(
        secrets, name=external_ids.secret_name("atc-xaccount", "other"), cluster_id="other", provided=None
    )

    other = secrets.get_secret_value(SecretId=external_ids.secret_name("atc-xaccount", "other"))["SecretString"]
    assert other != stored(secrets)


def test_an_id_from_the_event_replaces_the_stored_one(secrets):
    ensure(secrets)
    calls = watch(secrets)

    record = ensure(secrets, OPERATOR_ID)

    assert stored(secrets) == OPERATOR_ID
    assert record["action"] == "updated"
    assert calls.writes == ["PutSecretValue"]
    assert OPERATOR_ID not in json.dumps(record)


def test_the_same_id_from_the_event_is_not_rewritten(secrets):
    ensure(secrets, OPERATOR_ID)
    calls = watch(secrets)

    record = ensure(secrets, OPERATOR_ID)

    assert record["action"] == "unchanged"
    assert calls.writes == []
    assert OPERATOR_ID not in json.dumps(record)


def test_an_id_from_the_event_is_stored_as_given_on_first_sight(secrets):
    record = ensure(secrets, OPERATOR_ID)

    assert stored(secrets) == OPERATOR_ID
    assert (record["action"], record["generated"]) == ("created", False)
    assert OPERATOR_ID not in json.dumps(record)


def test_dry_run_creates_no_secret(secrets):
    calls = watch(secrets)

    record = ensure(secrets, dry_run=True)

    assert (record["action"], record["applied"]) == ("created", False)
    assert calls.writes == []
    assert external_ids.read_external_id(secrets, NAME) is None


def test_read_of_a_cluster_without_secret_is_none(secrets):
    assert external_ids.read_external_id(secrets, NAME) is None
    ensure(secrets, OPERATOR_ID)
    arn, value = external_ids.read_external_id(secrets, NAME)
    assert value == OPERATOR_ID
    assert arn == secrets.describe_secret(SecretId=NAME)["ARN"]
