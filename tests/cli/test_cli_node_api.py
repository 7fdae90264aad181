"""`local run` of the Node API sample files (issue 19): Ready with a verified key, and no external ID printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import EVENTS, cli

EVENT = EVENTS / "cluster-registered-node-api.json"
DEREGISTER = EVENTS / "cluster-deregistered-node-api.json"
WORLD = EVENTS / "sample-world-node-api.json"
#: The sample event with an external ID of its own, so the human output can be searched for it.
GIVEN_ID = "operator-chosen-external-id-7Yq2"


@pytest.fixture(scope="module")
def human(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str]:
    event: dict[str, Any] = json.loads(EVENT.read_text())
    event["detail"]["externalId"] = GIVEN_ID
    path = tmp_path_factory.mktemp("node-api") / "event.json"
    path.write_text(json.dumps(event))
    code, out = cli("local", "run", path, "--world", WORLD)
    return code, out, GIVEN_ID


def test_the_sample_files_end_ready_with_a_verified_key_and_round_trip(tmp_path: Path):
    code, text = cli("local", "run", EVENT, "--world", WORLD, "--json")
    report = json.loads(text)
    assert code == 0 and report["status"] == "SUCCEEDED", report["cause"]
    assert report["output"]["accessKey"]["state"] == "verified"
    ready = [e for e in report["events"] if e["detail-type"] == "Cluster S3 Access Ready"]
    assert ready[0]["detail"]["accessKey"]["id"] == report["output"]["accessKey"]["id"]
    claims = [step["claim"] for step in report["proof"]["steps"] if step["ok"]]
    assert "Cluster Manager's access key browses s3://atc-demo-transfers (Node API)" in claims
    after = tmp_path / "after.json"
    after.write_text(json.dumps(report["world"]))
    code, text = cli("local", "run", DEREGISTER, "--world", after, "--json")
    revoked = json.loads(text)
    assert code == 0 and revoked["output"]["changes"]["accessKey"]["action"] == "deleted"
    assert revoked["world"]["nodeApis"]["https://demo-cluster-1.example:9092"]["accessKeys"] == {}


def test_the_human_output_names_the_key_and_never_prints_the_external_id(human):
    code, out, external_id = human
    assert code == 0, out
    assert "The access key was created through the cluster's Node API" in out
    assert "  ok   Cluster Manager's access key browses s3://atc-demo-transfers (Node API)" in out
    assert "(external IDs redacted)" in out
    assert external_id not in out
    assert "Traceback" not in out
