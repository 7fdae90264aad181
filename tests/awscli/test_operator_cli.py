"""The operator commands against a moto server over HTTP (AWS_ENDPOINT_URL).

The application is deployed into the server the way the emulator deploys it, and the
commands talk to it with nothing but the standard credential chain and the endpoint.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.trust import grant_external_ids
from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, Emulator
from atc_xaccount_cli.local.serve import serving
from atc_xaccount_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CM, S3 = "111111111111", "222222222222"
NODE = f"arn:aws:iam::{CM}:role/atc-node"
EVENT = json.loads((ROOT / "events" / "cluster-registered.json").read_text())
WORLD = json.loads((ROOT / "events" / "sample-world.json").read_text())


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    """`local serve`'s server: the stack deployed over HTTP, the sample world, the stack published."""
    with serving(ROOT, copy.deepcopy(WORLD), port=0) as served:
        yield served.emulator


def cli(*argv: Any) -> tuple[int, Any]:
    out = io.StringIO()
    code = main([str(a) for a in argv], out=out)
    text = out.getvalue()
    assert "Traceback" not in text
    return code, json.loads(text) if "--json" in argv and text.strip() else text


def event_file(tmp_path: Path, cluster: str, **detail: Any) -> Path:
    event = copy.deepcopy(EVENT)
    event["detail"].update(clusterId=cluster, **detail)
    event["id"] = f"event-{cluster}"
    path = tmp_path / f"{cluster}.json"
    path.write_text(json.dumps(event))
    return path


def trust_now() -> dict[str, Any]:
    creds = boto3.client("sts").assume_role(RoleArn=f"arn:aws:iam::{S3}:role/x", RoleSessionName="test")["Credentials"]
    iam = boto3.client(
        "iam",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return iam.get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]


def test_the_endpoint_is_a_real_server(server):
    import os

    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_plan_shows_the_three_changes_and_writes_nothing(server, tmp_path):
    before = trust_now()
    code, body = cli("plan", event_file(tmp_path, "planned"), "--json")

    assert code == 0, body
    assert {k: v["action"] for k, v in body["changes"].items()} == {
        "externalId": "created",
        "assumePolicy": "created",
        "attach": "attached",
        "trust": "updated",
    }
    assert body["upToDate"] is False
    assert all(v["applied"] is False for v in body["changes"].values())
    assert trust_now() == before, "plan is read-only"


def test_register_follows_the_execution_and_a_duplicate_shows_as_one(server, tmp_path):
    path = event_file(tmp_path, "cli-cluster")
    code, body = cli("register", path, "--json")
    assert code == 0, body
    assert body["status"] == "SUCCEEDED" and body["duplicate"] is False
    assert body["execution"].startswith("register-cli-cluster-")

    code, again = cli("register", path, "--json")
    assert code == 0
    assert again["duplicate"] is True and again["execution"] == body["execution"]

    code, status = cli("status", body["execution"], "--json")
    assert code == 0 and status["status"] == "SUCCEEDED"
    assert [s["name"] for s in status["states"]][:2] == ["Validate", "Preflight"]


def test_show_reveals_the_external_id_that_the_trust_admits(server, tmp_path):
    cli("register", event_file(tmp_path, "shown"), "--json")
    code, body = cli("show", "shown", "--json")

    assert code == 0 and body["state"] == "READY"
    assert body["roleArn"] == f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
    assert evaluate_trust(trust_now(), NODE, body["externalId"]).allowed
    code, human = cli("show", "shown")
    assert body["externalId"] in human


def test_show_of_an_unknown_cluster_says_so(server):
    code, body = cli("show", "never-registered", "--json")
    assert code == 1 and body["registered"] is False


def test_rotation_adds_then_removes_without_a_gap(server, tmp_path):
    cli("register", event_file(tmp_path, "rotated"), "--json")
    old = cli("show", "rotated", "--json")[1]["externalId"]

    code, started = cli("rotate-external-id", "rotated", "--json")
    assert code == 0, started
    new = started["newExternalId"]
    assert new != old
    assert evaluate_trust(trust_now(), NODE, old).allowed, "the old access key keeps working meanwhile"
    assert evaluate_trust(trust_now(), NODE, new).allowed

    code, finished = cli("rotate-external-id", "rotated", "--finish", "--json")
    assert code == 0, finished
    assert not evaluate_trust(trust_now(), NODE, old).allowed
    assert evaluate_trust(trust_now(), NODE, new).allowed
    assert cli("show", "rotated", "--json")[1]["externalId"] == new


def test_finishing_a_rotation_that_was_not_started_fails_clearly(server, tmp_path):
    cli("register", event_file(tmp_path, "unrotated"), "--json")
    code, body = cli("rotate-external-id", "unrotated", "--finish", "--json")
    assert code == 1 and body["error"] == "PrerequisiteMissing"


def test_audit_finds_nothing_then_finds_a_removed_grant(server, tmp_path):
    cli("register", event_file(tmp_path, "audited"), "--json")
    code, body = cli("audit", "--json")
    assert code == 0 and body["drifted"] == []

    secret = boto3.client("secretsmanager").get_secret_value(SecretId="atc-xaccount/audited/external-id")
    creds = boto3.client("sts").assume_role(RoleArn=f"arn:aws:iam::{S3}:role/x", RoleSessionName="test")["Credentials"]
    iam = boto3.client(
        "iam",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    from atc_xaccount.trust import remove_trust_grant

    edited, _ = remove_trust_grant(trust_now(), NODE, secret["SecretString"])
    iam.update_assume_role_policy(RoleName="atc-s3-access-keys", PolicyDocument=json.dumps(edited))

    code, body = cli("audit", "--json")
    assert [c["clusterId"] for c in body["drifted"]] == ["audited"]
    assert body["drifted"][0]["drift"][0]["kind"] == "TrustGrantMissing"


def test_snapshot_writes_a_world_the_emulator_accepts(server, tmp_path):
    out = tmp_path / "world.json"
    code, body = cli("snapshot", CM, S3, "--out", out, "--json")
    assert code == 0 and body["accounts"] == [CM, S3]

    world = json.loads(out.read_text())
    assert world["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"] == trust_now()
    from atc_xaccount_cli.local.world import validate_world

    validate_world(world)


def test_snapshot_writes_the_bootstrap_names_an_account_was_deployed_with(server, tmp_path):
    """--direct reads the automation role's own policy (the role may not read itself): the world
    then says which names the account's stack instance allows. moto's default credentials are
    the automation account's, so that is the account snapshotted here."""
    account = AUTOMATION_ACCOUNT
    server.deploy_bootstrap(account, {"NodeRoleName": "atc-transfer-node", "AssumePolicyName": "atc-transfer-assume"})
    try:
        out = tmp_path / "world.json"
        code, _ = cli("snapshot", account, "--direct", "--out", out, "--json")
        world = json.loads(out.read_text())
        through_the_role = tmp_path / "role.json"
        cli("snapshot", CM, "--out", through_the_role, "--json")
    finally:
        server.deploy_bootstrap(account, {})
    assert code == 0
    assert world["accounts"][account]["bootstrap"] == {
        "AssumePolicyName": "atc-transfer-assume",
        "NodeRoleName": "atc-transfer-node",
    }
    assert "bootstrap" not in json.loads(through_the_role.read_text())["accounts"][CM]
    from atc_xaccount_cli.local.world import validate_world

    validate_world(world)


def test_deregister_revokes_exactly_that_cluster(server, tmp_path):
    cli("register", event_file(tmp_path, "leaving"), "--json")
    cli("register", event_file(tmp_path, "staying"), "--json")
    leaving = cli("show", "leaving", "--json")[1]["externalId"]
    staying = cli("show", "staying", "--json")[1]["externalId"]

    event = json.loads(event_file(tmp_path, "leaving").read_text())
    event["detail-type"] = "Cluster Deregistered"
    event["detail"] = {k: event["detail"][k] for k in ("clusterId", "clusterManagerAccountId", "s3AccountId")}
    path = tmp_path / "deregister.json"
    path.write_text(json.dumps(event))
    code, body = cli("deregister", path, "--json")

    assert code == 0 and body["status"] == "SUCCEEDED", body
    ids = grant_external_ids(trust_now(), NODE)
    assert leaving not in ids and staying in ids
    assert cli("show", "leaving", "--json")[1]["state"] == "REVOKED"


def test_without_a_deployment_the_error_says_where_it_looked(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _ = cli("status", "anything", "--region", "eu-west-1", "--json")
    assert code in (1, 2)
    assert "atc-xaccount:" in capsys.readouterr().err


def test_doctor_names_no_broken_link_for_a_registered_cluster(server, tmp_path):
    cli("register", event_file(tmp_path, "doctored"), "--json")
    code, body = cli("doctor", "doctored", "--json")

    assert code == 0, body["firstBroken"]
    assert [x["link"] for x in body["links"]] == [
        "assume",
        "trust",
        "s3:atc-demo-transfers",
        "bucket-policy:atc-demo-transfers",
        "kms:atc-demo-transfers",
        "session",
    ]
    assert body["externalId"] is None
    assert (
        cli("doctor", "doctored", "--reveal", "--json")[1]["externalId"]
        == cli("show", "doctored", "--json")[1]["externalId"]
    )


def test_doctor_of_an_event_not_registered_names_the_missing_grant_first(server, tmp_path):
    """Other clusters got the assume policy attached already: the missing link is this cluster's grant."""
    code, text = cli("doctor", "--event", event_file(tmp_path, "not-yet", externalId="not-yet-granted"))
    assert code == 1
    lines = text.splitlines()
    assert lines[0] == "BROKEN  the trust policy of atc-s3-access-keys admits atc-node with the external ID"
    assert lines[2] == (
        "  fix  grant atc-node with this external ID in the trust policy of atc-s3-access-keys: "
        "`atc-xaccount register EVENT_FILE`"
    )
    assert "not-yet-granted" not in text, "the external ID is printed only with --reveal"


# --- issue 17: every operator command in human mode, against `local serve` ----------------------


def test_the_deployment_is_found_by_its_stack_as_sam_deploy_made_it(server):
    from atc_xaccount_cli.aws.deployment import discover

    deployment = discover(boto3.Session(region_name="us-east-1"))
    assert deployment.stack == "atc-xaccount", "samconfig.toml's stack_name, published by local serve"
    assert set(deployment.tables) == {"registry", "locks"} and deployment.bulk_bucket


def test_registering_again_after_a_deregistration_is_a_new_execution_and_a_duplicate_still_one(server, tmp_path):
    registration = event_file(tmp_path, "comeback")
    first = cli("register", registration, "--json")[1]
    event = json.loads(registration.read_text())
    event.update({"id": "event-comeback-leaves", "detail-type": "Cluster Deregistered"})
    event["detail"] = {k: event["detail"][k] for k in ("clusterId", "clusterManagerAccountId", "s3AccountId")}
    leaving = tmp_path / "leaving.json"
    leaving.write_text(json.dumps(event))
    assert cli("deregister", leaving, "--json")[1]["status"] == "SUCCEEDED"
    assert cli("show", "comeback", "--json")[1]["state"] == "REVOKED"

    code, again = cli("register", registration, "--json")
    assert code == 0 and again["duplicate"] is False and again["status"] == "SUCCEEDED"
    assert again["execution"] != first["execution"]
    assert cli("show", "comeback", "--json")[1]["state"] == "READY"
    code, duplicate = cli("register", registration, "--json")
    assert code == 0 and duplicate["duplicate"] is True and duplicate["execution"] == again["execution"]
    code, repeated = cli("deregister", leaving, "--json")
    assert repeated["duplicate"] is False, "the second registration's deregistration is its own"
    assert cli("deregister", leaving, "--json")[1]["duplicate"] is True


def test_status_of_an_unknown_execution_says_so(server, capsys):
    code, text = cli("status", "nosuch")
    assert code == 2 and text == ""
    assert capsys.readouterr().err.startswith("atc-xaccount: no execution nosuch in any atc-xaccount state machine")


def test_register_via_the_bus_says_what_it_put(server):
    code, text = cli("register", ROOT / "events" / "cluster-registered.json", "--via", "events")
    assert code == 0
    assert text.startswith("Put the Cluster Registered event on the bus default (event id ")


def test_register_from_a_file_reports_each_rejected_row_and_exits_5(server):
    code, text = cli("register", "--from-file", ROOT / "events" / "bulk-registrations.csv")
    assert code == 5
    assert "5 rows: 1 rejected, 4 succeeded; report s3://" in text
    assert "line    4  REJECTED  -  InvalidEvent: detail.s3AccountId: must be 12 digits" in text
    assert "{'" not in text, "no Python dict"


def test_snapshot_without_out_prints_the_world(server):
    code, text = cli("snapshot", CM)
    assert code == 0
    assert json.loads(text)["accounts"][CM]["roles"]["atc-node"]


def test_plan_of_a_refused_request_says_why_in_human_mode(server):
    code, text = cli("plan", ROOT / "events" / "cluster-registered-invalid.json")
    assert code == 1
    assert text.splitlines() == [
        "plan: refused, nothing written",
        "  error  InvalidEvent",
        "  cause  detail.s3AccountId: must be 12 digits",
    ]


def test_access_analyzer_answers_unavailable_over_http(server, tmp_path, monkeypatch):
    """The CLI's own check (plan) asks the endpoint, not an environment flag; moto has no Access
    Analyzer, and the server says "not implemented" as moto does in-process."""
    monkeypatch.delenv("ACCESS_ANALYZER", raising=False)
    code, body = cli("plan", event_file(tmp_path, "analyzed"), "--json")
    assert code == 0, body
    assert set(body["preflight"]["accessAnalyzer"].values()) == {
        "unavailable: IAM Access Analyzer is not available here (offline lint only)"
    }


def test_an_event_put_on_the_bus_starts_its_state_machine_as_eventbridge_does(server, tmp_path):
    """`register --via events` on `local serve`: the template's rule delivers the whole event to the
    onboarding, under a name EventBridge chooses (a fresh one per delivery: a registration after
    a deregistration through the bus is never taken for a duplicate). The event's `account` is
    the sender's, as EventBridge sets it: here the automation account's own credentials."""
    import time

    code, _ = cli("register", event_file(tmp_path, "bused"), "--via", "events", "--json")
    assert code == 0
    sfn = boto3.client("stepfunctions")
    arn = server.state_machine_arns["OnboardStateMachine"]
    deadline, delivered = time.monotonic() + 120, None
    while delivered is None and time.monotonic() < deadline:
        for execution in sfn.list_executions(stateMachineArn=arn)["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if '"bused"' in described["input"] and described["status"] != "RUNNING":
                delivered = described
        time.sleep(0.2)
    assert delivered is not None, "the rule started no execution"
    event = json.loads(delivered["input"])
    assert event["detail-type"] == "Cluster Registered" and event["account"] == AUTOMATION_ACCOUNT
    assert not delivered["name"].startswith("register-"), "EventBridge's name, not the CLI's"
