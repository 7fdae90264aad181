"""The Node API option end to end (issue 19): the workflow creates, proves and deletes the access key.

The real ASL and handlers on one emulator (module-scoped), with the emulated Node API of
each case's cluster; the step roles and the automation roles are enforced as usual.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.steps.context import StepContext
from atc_xaccount_cli.doctor import DoctorOptions, doctor
from atc_xaccount_cli.local import node_api_schema
from atc_xaccount_cli.local.dispatch import is_write
from atc_xaccount_cli.local.engine import Emulator
from atc_xaccount_cli.local.faults import FaultPlan
from atc_xaccount_cli.local.run import cause_message
from tests.leastpriv.conftest import OFFBOARD, ROOT
from tests.node_api_lab import NODE_PAIRS, NodeCase, NodeLab

#: The schema of each request body the client sends, by operation.
BODY_SCHEMAS = {
    "CreateAccessKey": "accessKeyRequest",
    "UpdateAccessKey": "accessKeyPUTRequest",
    "Browse": "filesBrowseRequest",
}


@pytest.fixture(scope="module")
def lab() -> Iterator[NodeLab]:
    with Emulator(ROOT, parameters={"AllowedAccountPairs": NODE_PAIRS}) as emulator:
        yield NodeLab(emulator)


@contextmanager
def recording(sent: list[dict[str, Any]]) -> Iterator[None]:
    """Every request the steps' Node API client sends, with its operation and parsed body."""
    import atc_xaccount.node_api as client

    original = client.send

    def record(request: Any) -> Any:
        sent.append({"operation": request.operation, "body": json.loads(request.body) if request.body else None})
        return original(request)

    client.send = record
    try:
        yield
    finally:
        client.send = original


@pytest.fixture(scope="module")
def onboarded(lab: NodeLab) -> tuple[NodeCase, Any, list[dict[str, Any]]]:
    """A cluster onboarded with its Node API: the case, the execution, the requests the client sent."""
    case = lab.seed(lab.case())
    sent: list[dict[str, Any]] = []
    with recording(sent):
        result = lab.run(case.registered())
    return case, result, sent


def _state_names(result: Any) -> list[str]:
    return [s.name for s in result.states]


def _events(lab: NodeLab, result: Any) -> list[dict[str, Any]]:
    return [e for e in lab.emulator.published_events() if e["detail"].get("execution") == result.name]


def test_onboarding_creates_the_key_proves_it_and_ready_carries_it(lab, onboarded):
    case, result, _ = onboarded
    assert result.status == "SUCCEEDED", result.cause
    names = _state_names(result)
    assert names.index("Record") < names.index("EnsureAccessKey") < names.index("PublishReady")
    key = result.output["accessKey"]
    assert key["state"] == "verified" and key["action"] == "created"
    # The Node API holds the key, as Cluster Manager's Credentials -> Assume Role would make it.
    held = lab.keys(case)[key["id"]]
    assert held["storage"] == {
        "type": "aws_s3",
        "bucket": case.case.bucket,
        "path": "/",
        "endpoint": "s3.amazonaws.com",
        "credentials": {
            "type": "assume-role",
            "assume_role_arn": f"arn:aws:iam::{case.case.s3}:role/atc-s3-access-keys",
            "assume_role_external_id": lab.external_id(case),
            "assume_role_session_name": f"atc-xaccount-{case.cluster}",
        },
    }
    recorded = lab.registry(case)["accessKey"]
    assert recorded["id"] == key["id"] and recorded["state"] == "verified" and recorded["createdByUs"] is True
    ready = [e for e in _events(lab, result) if e["detail-type"] == "Cluster S3 Access Ready"]
    assert ready and ready[0]["detail"]["accessKey"]["id"] == key["id"]
    assert ready[0]["detail"]["accessKey"]["state"] == "verified"


def test_the_external_id_is_in_no_state_output_or_event(lab, onboarded):
    case, result, _ = onboarded
    secret = lab.external_id(case)
    assert secret not in json.dumps(result.output)
    assert secret not in json.dumps(_events(lab, result))
    assert secret not in lab.history(result)
    assert secret not in json.dumps(lab.registry(case))


def test_every_request_the_client_sends_is_valid_against_the_node_api_schema(lab, onboarded):
    case, _, sent = onboarded
    # An update too: the key's path changes with a new registration.
    with recording(sent):
        moved = lab.run(case.registered(nodeApi={**case.node_api, "path": "/incoming"}))
    assert moved.status == "SUCCEEDED", moved.cause
    assert moved.output["accessKey"]["action"] == "updated"
    assert lab.keys(case)[moved.output["accessKey"]["id"]]["storage"]["path"] == "/incoming"
    checked = {r["operation"] for r in sent if r["operation"] in BODY_SCHEMAS}
    assert checked == set(BODY_SCHEMAS), sent
    for request in sent:
        if request["operation"] in BODY_SCHEMAS:
            assert node_api_schema.problems(request["body"], BODY_SCHEMAS[request["operation"]]) == [], request
        else:
            assert request["body"] is None, request


def test_a_redelivered_event_finds_the_key_and_makes_zero_writes(lab):
    case = lab.seed(lab.case())
    first = lab.run(case.registered())
    assert first.status == "SUCCEEDED", first.cause
    with lab.emulator.counting() as ledger:
        again = lab.run(case.registered())
        calls = ledger.summary(again.name)
    assert again.status == "SUCCEEDED", again.cause
    assert again.output["accessKey"] == {**first.output["accessKey"], "action": "unchanged"}
    assert calls["writes"] == 0, calls
    assert calls["by_operation"]["nodeapi:GetAccessKey"] == 1 and calls["by_operation"]["nodeapi:Browse"] == 1
    assert list(lab.keys(case)) == [first.output["accessKey"]["id"]]


def test_browse_retries_wait_for_iam_then_the_key_is_verified(lab):
    case = lab.seed(lab.case())
    lab.emulator.dispatcher.before_call = FaultPlan(["EnsureAccessKey/nodeapi:Browse=propagation:1:2"]).before_call
    with lab.emulator.counting() as ledger:
        try:
            result = lab.run(case.registered())
        finally:
            lab.emulator.dispatcher.before_call = None
        calls = ledger.summary(result.name)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["accessKey"]["state"] == "verified"
    assert calls["by_operation"]["nodeapi:Browse"] == 3


def test_a_browse_that_keeps_failing_fails_named_and_keeps_the_iam_changes(lab):
    case = lab.seed(lab.case())
    lab.emulator.dispatcher.before_call = FaultPlan(["EnsureAccessKey/nodeapi:Browse=fail"]).before_call
    try:
        result = lab.run(case.registered())
    finally:
        lab.emulator.dispatcher.before_call = None
    assert result.status == "FAILED" and result.error == "AccessKeyUnusable"
    assert "cannot browse its storage after 7 attempt(s): HTTP 500: ServiceFailure" in result.cause
    assert "the IAM changes are in place and recorded" in result.cause
    assert "Compensate" not in _state_names(result)
    # The grant stays: atc-node is admitted with the cluster's external ID.
    iam = lab.emulator.ensure_account(case.case.s3).client("iam")
    trust = iam.get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]
    node = f"arn:aws:iam::{case.case.cm}:role/atc-node"
    assert evaluate_trust(trust, node, lab.external_id(case)).allowed
    entry = lab.registry(case)
    assert entry["state"] == "READY" and entry["accessKey"]["state"] == "unusable"
    assert "ServiceFailure" in entry["accessKey"]["lastError"]
    failed = [e for e in _events(lab, result) if e["detail-type"] == "Cluster S3 Access Failed"]
    assert failed and failed[0]["detail"]["error"] == "AccessKeyUnusable"


def test_a_key_the_node_api_refuses_fails_named_with_its_answer(lab):
    # The node user may create keys only within its restrictions: not for this bucket.
    case = lab.case()
    lab.emulator.seed(case.world())
    lab.emulator.node_apis.apis[case.url]["users"]["node_admin"]["restrictions"] = ["s3://*/some-other-bucket/*"]
    result = lab.run(case.registered())
    assert result.status == "FAILED" and result.error == "AccessKeyRejected"
    assert f"the Node API at {case.url} refused CreateAccessKey (HTTP 400: Bad Request: storage: the node user" in (
        cause_message(result.cause) or ""
    )
    assert "the IAM changes are in place and recorded" in result.cause
    assert lab.keys(case) == {}
    assert lab.registry(case)["state"] == "READY"


def test_a_node_user_without_key_master_is_named(lab):
    case = lab.seed(lab.case(), acl=())
    result = lab.run(case.registered())
    assert result.status == "FAILED" and result.error == "NodeApiCredentialsInvalid"
    assert "may not manage access keys" in result.cause and case.secret_name in result.cause
    assert lab.keys(case) == {}


def test_deregistration_deletes_the_key_it_created_first_and_only_that_one(lab):
    case = lab.case()
    theirs = {
        "secret": "a-key-somebody-made-by-hand",
        "storage": {"type": "aws_s3", "bucket": case.case.bucket, "path": "/", "endpoint": "s3.amazonaws.com"},
    }
    lab.seed(case, accessKeys={"made-by-hand": theirs})
    onboarded = lab.run(case.registered())
    assert onboarded.status == "SUCCEEDED", onboarded.cause
    ours = onboarded.output["accessKey"]["id"]
    assert set(lab.keys(case)) == {ours, "made-by-hand"}
    result = lab.run(case.deregistered(), OFFBOARD)
    assert result.status == "SUCCEEDED", result.cause
    names = _state_names(result)
    assert names.index("DeleteAccessKey") < names.index("AcquireLocks") < names.index("RevokeTrust")
    assert result.output["changes"]["accessKey"] == {"id": ours, "url": case.url, "action": "deleted"}
    assert set(lab.keys(case)) == {"made-by-hand"}
    secrets = lab.emulator.client("secretsmanager")
    # Deleted (AWS answers InvalidRequestException while it still deletes it: docs/time.md).
    gone = (secrets.exceptions.ResourceNotFoundException, secrets.exceptions.InvalidRequestException)
    with pytest.raises(gone):
        secrets.get_secret_value(SecretId=f"atc-xaccount/{case.cluster}/access-key")
    assert "accessKey" not in lab.registry(case)


def _doctor(lab: NodeLab, case: NodeCase) -> tuple[int, dict[str, Any]]:
    return doctor(StepContext.from_env(os.environ, "test-doctor"), case.cluster, None, DoctorOptions())


def test_the_doctor_reads_the_key_and_its_consumer_link_is_ok_then_broken(lab):
    case = lab.seed(lab.case())
    result = lab.run(case.registered())
    assert result.status == "SUCCEEDED", result.cause
    with lab.emulator.counting() as ledger:
        code, body = _doctor(lab, case)
    consumer = next(link for link in body["links"] if link["link"] == "consumer")
    assert code == 0 and consumer["verdict"] == "ok", consumer
    assert consumer["claim"].startswith(f"Cluster Manager's access key {result.output['accessKey']['id']} on ")
    assert not [k for k in ledger.summary()["by_operation"] if is_write(k)]
    # Someone edits the key's external ID by hand: only the consumer link can see it.
    key = lab.emulator.node_apis.apis[case.url]["accessKeys"][result.output["accessKey"]["id"]]
    key["storage"]["credentials"]["assume_role_external_id"] = "typed-by-hand-wrongly"
    code, body = _doctor(lab, case)
    assert code == 1 and body["firstBroken"]["link"] == "consumer", body["firstBroken"]
    assert "browsing through the key fails: HTTP 500" in body["firstBroken"]["detail"]
    assert "typed-by-hand-wrongly" not in json.dumps(body) and lab.external_id(case) not in json.dumps(body)
    # The key is gone: broken, and re-delivering the registration is the fix.
    del lab.emulator.node_apis.apis[case.url]["accessKeys"][result.output["accessKey"]["id"]]
    code, body = _doctor(lab, case)
    assert code == 1 and "has no access key" in body["firstBroken"]["detail"]
    assert "deliver the cluster's registration event again" in body["firstBroken"]["fix"]


def test_a_redelivery_rewrites_a_key_that_cannot_browse(lab):
    case = lab.seed(lab.case())
    first = lab.run(case.registered())
    key_id = first.output["accessKey"]["id"]
    key = lab.emulator.node_apis.apis[case.url]["accessKeys"][key_id]
    key["storage"]["credentials"]["assume_role_external_id"] = "typed-by-hand-wrongly"
    again = lab.run(case.registered())
    assert again.status == "SUCCEEDED", again.cause
    assert again.output["accessKey"]["action"] == "updated"
    credentials = lab.keys(case)[key_id]["storage"]["credentials"]
    assert credentials["assume_role_external_id"] == lab.external_id(case)


def _browses(lab: NodeLab, case: NodeCase) -> bool:
    """A browse through the cluster's key, as Cluster Manager's clients would make it."""
    from atc_xaccount.access_key_custody import read_key
    from atc_xaccount.node_api import NodeApiClient

    held = read_key(lab.emulator.client("secretsmanager"), f"atc-xaccount/{case.cluster}/access-key")
    assert held is not None
    return NodeApiClient(case.url, "", "").browse(held.key_id, held.secret).ok


ROTATE = "RotateStateMachine"
#: The rotation's steps that change what the key or the trust admit.
ROTATION_STEPS = ("RotateStartFunction", "RotateAccessKeyFunction", "RotateFinishFunction")


def _rotation(case: NodeCase, phase: str) -> dict[str, Any]:
    event = case.case.event(json.loads((ROOT / "events" / "external-id-rotation-start.json").read_text()))
    event["detail"]["phase"] = phase
    return event


@contextmanager
def browsing_after_each_step(lab: NodeLab, case: NodeCase, seen: list[tuple[str, bool]]) -> Iterator[None]:
    """After each rotation step returns (or fails), browse through the key as Cluster Manager would."""
    dispatcher = lab.emulator.dispatcher
    original = dispatcher.invoke

    def invoke(function_ref: str, payload: Any, response_headers: dict[str, str]) -> bytes:
        try:
            return original(function_ref, payload, response_headers)
        finally:
            step = function_ref.rsplit(":", 1)[-1]
            if step in ROTATION_STEPS:
                seen.append((step.removesuffix("Function"), _browses(lab, case)))

    dispatcher.invoke = invoke  # type: ignore[method-assign]
    try:
        yield
    finally:
        del dispatcher.invoke


def _current_and_pending(lab: NodeLab, case: NodeCase) -> dict[str, str]:
    secrets = lab.emulator.client("secretsmanager")
    name = f"atc-xaccount/{case.cluster}/external-id"
    versions = secrets.list_secret_version_ids(SecretId=name)["Versions"]
    return {
        stage: secrets.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]
        for version in versions
        for stage in version.get("VersionStages", [])
        if stage in ("AWSCURRENT", "AWSPENDING")
    }


def _admits(lab: NodeLab, case: NodeCase, external_id: str) -> bool:
    trust = lab.emulator.ensure_account(case.case.s3).client("iam").get_role(RoleName="atc-s3-access-keys")
    node = f"arn:aws:iam::{case.case.cm}:role/atc-node"
    return evaluate_trust(trust["Role"]["AssumeRolePolicyDocument"], node, external_id).allowed


def test_rotation_with_the_node_api_keeps_a_working_key_at_every_step(lab):
    case = lab.seed(lab.case())
    onboarded = lab.run(case.registered())
    assert onboarded.status == "SUCCEEDED", onboarded.cause
    key_id, old = onboarded.output["accessKey"]["id"], lab.external_id(case)
    seen: list[tuple[str, bool]] = []
    with browsing_after_each_step(lab, case, seen):
        rotated = lab.run(_rotation(case, "start"), ROTATE)
    assert rotated.status == "SUCCEEDED", rotated.cause
    # One start finishes by itself: the key is moved and proven between start and finish.
    assert seen == [("RotateStart", True), ("RotateAccessKey", True), ("RotateFinish", True)]
    names = _state_names(rotated)
    assert names.index("RotateStart") < names.index("ReleaseLocks") < names.index("AwaitPropagation")
    assert names.index("RotateAccessKey") < names.index("AcquireLocksToFinish") < names.index("RotateFinish")
    new = lab.external_id(case)
    assert new != old and _current_and_pending(lab, case) == {"AWSCURRENT": new}
    assert lab.keys(case)[key_id]["storage"]["credentials"]["assume_role_external_id"] == new
    assert _admits(lab, case, new) and not _admits(lab, case, old)
    assert rotated.output["accessKey"] == {"managed": True, "id": key_id, "state": "verified", "action": "updated"}
    assert rotated.output["rotation"]["phase"] == "finish"
    entry = lab.registry(case)
    assert entry["accessKey"]["externalIdFingerprint"] == entry["externalIdFingerprint"]
    # No human read or typed an ID, and none is in the state, the history or the events.
    for secret in (old, new):
        assert secret not in lab.history(rotated) and secret not in json.dumps(rotated.output)
        assert secret not in json.dumps(_events(lab, rotated))
    code, body = _doctor(lab, case)
    assert code == 0 and next(link for link in body["links"] if link["link"] == "consumer")["verdict"] == "ok"
    # A re-delivered registration afterwards finds everything as it is: zero writes.
    with lab.emulator.counting() as ledger:
        after = lab.run(case.registered())
        writes = ledger.summary(after.name)["writes"]
    assert after.status == "SUCCEEDED" and after.output["accessKey"]["action"] == "unchanged" and writes == 0


def test_a_key_that_cannot_browse_with_the_new_id_is_put_back_and_nothing_is_withdrawn(lab):
    case = lab.seed(lab.case())
    onboarded = lab.run(case.registered())
    assert onboarded.status == "SUCCEEDED", onboarded.cause
    key_id, old = onboarded.output["accessKey"]["id"], lab.external_id(case)
    seen: list[tuple[str, bool]] = []
    # Every browse of the move fails (IAM never lets the pending ID in); the one after the restore works.
    lab.emulator.dispatcher.before_call = FaultPlan(["RotateAccessKey/nodeapi:Browse=fail:1:7"]).before_call
    try:
        with browsing_after_each_step(lab, case, seen):
            failed = lab.run(_rotation(case, "start"), ROTATE)
    finally:
        lab.emulator.dispatcher.before_call = None
    assert failed.status == "FAILED" and failed.error == "AccessKeyUnusable", failed.cause
    assert "the key carries the current external ID again and browses" in failed.cause
    assert seen == [("RotateStart", True), ("RotateAccessKey", True)], "RotateFinish never ran"
    assert lab.keys(case)[key_id]["storage"]["credentials"]["assume_role_external_id"] == old
    pending = _current_and_pending(lab, case)["AWSPENDING"]
    assert _admits(lab, case, old) and _admits(lab, case, pending), "nothing was withdrawn"
    assert lab.registry(case)["accessKey"]["state"] == "verified"
    # A finish then moves the key again, proves it and only then withdraws the old ID.
    seen.clear()
    with browsing_after_each_step(lab, case, seen):
        finished = lab.run(_rotation(case, "finish"), ROTATE)
    assert finished.status == "SUCCEEDED", finished.cause
    assert seen == [("RotateAccessKey", True), ("RotateFinish", True)]
    assert lab.external_id(case) == pending and not _admits(lab, case, old)


def test_a_key_atc_xaccount_did_not_create_is_left_for_the_operator(lab):
    case = lab.seed(lab.case())
    onboarded = lab.run(case.registered())
    assert onboarded.status == "SUCCEEDED", onboarded.cause
    # The registry records the key as one somebody else created (as for a key adopted by hand).
    lab.emulator.client("dynamodb").update_item(
        TableName=lab.emulator.registry_table or "",
        Key={"clusterId": {"S": case.cluster}},
        UpdateExpression="SET accessKey.createdByUs = :no",
        ExpressionAttributeValues={":no": {"BOOL": False}},
    )
    old = lab.external_id(case)
    started = lab.run(_rotation(case, "start"), ROTATE)
    assert started.status == "SUCCEEDED", started.cause
    assert started.output["rotation"]["phase"] == "start" and "accessKey" not in started.output
    names = _state_names(started)
    assert "RotateAccessKey" in names and "RotateFinish" not in names
    assert _admits(lab, case, old), "the key in use (by hand) keeps working until the operator finishes"
