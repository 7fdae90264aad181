"""The Node API client against the emulated Node API, and the consumer link's verdicts (no AWS)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from atc_xaccount import access_keys
from atc_xaccount.chain import BROKEN, OK, UNDECIDABLE
from atc_xaccount.consumer import Observation, consumer_link
from atc_xaccount.errors import NodeApiCredentialsInvalid, NodeApiUnavailable
from atc_xaccount.node_api import Answer, NodeApiClient
from atc_xaccount_cli.local.nodeapi import EmulatedNodeApis
from atc_xaccount_cli.local.world import WorldError, validate_world

URL = "https://node.example:9092"
EXTERNAL_ID = "the-external-id-of-the-cluster"


@pytest.fixture
def node() -> Iterator[EmulatedNodeApis]:
    apis = EmulatedNodeApis(SimpleNamespace(current_step=None, current_execution=None), "us-east-1", "aws")
    apis.seed(
        {
            URL: {
                "nodeRole": "arn:aws:iam::111111111111:role/atc-node",
                "users": {
                    "node_admin": {"password": "pw-1", "acl": ["key_master"]},
                    "reader": {"password": "pw-2", "acl": []},
                },
            }
        }
    )
    with apis.installed():
        yield apis


def storage(**changes: Any) -> dict[str, Any]:
    built = access_keys.storage(
        bucket="atc-demo-transfers",
        path="/",
        endpoint="s3.amazonaws.com",
        role_arn="arn:aws:iam::222222222222:role/atc-s3-access-keys",
        external_id=EXTERNAL_ID,
        cluster_id="demo-cluster-1",
    )
    return {**built, **changes}


def client(user: str = "node_admin", password: str = "pw-1") -> NodeApiClient:
    return NodeApiClient(URL, user, password, secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:atc-node-api/x")


def test_create_get_update_delete_as_documented(node):
    admin = client()
    created = admin.create_access_key(access_keys.create_body("atcx1", "key-secret", storage()))
    assert created.status == 200 and created.data["id"] == "atcx1" and "secret" not in created.data
    # accessKeyStorageResponse has no credentials: a GET never shows the external ID.
    shown = admin.get_access_key("atcx1")
    assert shown.ok and "credentials" not in shown.data["storage"]
    assert EXTERNAL_ID not in json.dumps(shown.data)
    assert admin.create_access_key(access_keys.create_body("atcx1", "other", storage())).status == 409
    # The schema's PUT storage still needs its type; the rest merges into the key.
    assert admin.update_access_key("atcx1", {"storage": {"path": "/incoming"}}).status == 400
    assert admin.update_access_key("atcx1", {"storage": {"type": "aws_s3", "path": "/incoming"}}).status == 204
    assert node.apis[URL]["accessKeys"]["atcx1"]["storage"]["path"] == "/incoming"
    assert node.apis[URL]["accessKeys"]["atcx1"]["storage"]["credentials"]["assume_role_external_id"] == EXTERNAL_ID
    assert admin.delete_access_key("atcx1").status == 204
    assert admin.get_access_key("atcx1").status == 404
    assert admin.delete_access_key("atcx1").status == 404


def test_the_node_api_generates_id_and_secret_when_absent_and_returns_the_secret(node):
    created = client().create_access_key({"storage": storage()})
    assert (
        created.status == 200 and created.data["secret"] == node.apis[URL]["accessKeys"][created.data["id"]]["secret"]
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"storage": {"type": "aws_s3", "bucket": "b"}}, "storage.endpoint: required for Amazon S3"),
        ({"storage": storage(credentials={"type": "assume-role"})}, "assume_role_external_id: required"),
        ({"storage": storage(), "owner": "me"}, "owner: not a field of accessKeyRequest"),
        ({"storage": storage(type="azure")}, "serves aws_s3 storage"),
        ({"id": "x"}, "'storage' is a required property"),
    ],
)
def test_a_bad_storage_block_is_400_with_the_problem(node, body, expected):
    answer = client().create_access_key(body)
    assert answer.status == 400 and expected in answer.describe(), answer.describe()


def test_basic_auth_and_key_master(node):
    with pytest.raises(NodeApiCredentialsInvalid, match="refused the node user node_admin"):
        client(password="wrong").get_access_key("x")
    with pytest.raises(NodeApiCredentialsInvalid, match="may not manage access keys"):
        client("reader", "pw-2").get_access_key("x")
    client().create_access_key(access_keys.create_body("atcx1", "key-secret", storage()))
    assert client().key_self("atcx1", "key-secret").data["id"] == "atcx1"
    assert client().key_self("atcx1", "not-the-secret").status == 401
    # A key may not manage keys here.
    with pytest.raises(NodeApiCredentialsInvalid, match="HTTP 403: Forbidden"):
        NodeApiClient(URL, "atcx1", "key-secret").get_access_key("atcx1")


def test_an_unknown_host_is_unavailable_and_answers_never_echo_secrets(node, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NodeApiUnavailable, match=r"cannot connect to elsewhere\.example"):
        NodeApiClient("https://elsewhere.example:9092", "u", "p").get_access_key("x")
    echo = Answer(400, {"error": {"reason": "Bad Request", "user_message": f"bad id {EXTERNAL_ID} for pw-1"}})
    described = echo.describe({EXTERNAL_ID, "pw-1"})
    assert described == "HTTP 400: Bad Request: bad id <redacted> for <redacted>"
    admin = client()
    admin.hide.add(EXTERNAL_ID)
    admin.create_access_key(access_keys.create_body("atcx2", "key-secret", storage()))
    assert EXTERNAL_ID not in caplog.text and "pw-1" not in caplog.text and "key-secret" not in caplog.text


def test_a_world_node_api_is_validated_with_its_path():
    base: dict[str, Any] = {"accounts": {}}
    with pytest.raises(WorldError, match=r"nodeApis\.http://x: must be an https:// URL"):
        validate_world({**base, "nodeApis": {"http://x": {}}})
    with pytest.raises(WorldError, match=r"nodeApis\.https://x\.example\.nodeRole"):
        validate_world({**base, "nodeApis": {"https://x.example": {"users": {"u": {"password": "p"}}}}})
    with pytest.raises(WorldError, match=r"optionally \"nodeApis\""):
        validate_world({**base, "nodeApis": {}, "more": 1})


# --- the consumer link (pure) -------------------------------------------------------------------

SEEN = {"url": URL, "bucket": "atc-demo-transfers", "path": "/"}


@pytest.mark.parametrize(
    ("observed", "verdict", "words"),
    [
        (Observation(**SEEN, key_id="atcx1", browsed=2), OK, "browsed through the key: 2 entries"),
        (Observation(**SEEN), BROKEN, "no access key was created"),
        (Observation(**SEEN, registered=False), UNDECIDABLE, "not registered"),
        (Observation(**SEEN, key_id="atcx1", unreachable="URLError: timed out"), UNDECIDABLE, "could not be checked"),
        (Observation(**SEEN, key_id="atcx1", missing=True), BROKEN, "has no access key atcx1"),
        (Observation(**SEEN, key_id="atcx1", differences=("storage.bucket is 'x'",)), BROKEN, "storage.bucket"),
        (Observation(**SEEN, key_id="atcx1", stale_external_id=True), BROKEN, "another external ID"),
        (Observation(**SEEN, key_id="atcx1", browse="HTTP 500: AccessDenied"), BROKEN, "HTTP 500: AccessDenied"),
        (Observation(**SEEN, key_id="atcx1", refused="the Node API refused"), BROKEN, "refused to show the key"),
    ],
)
def test_the_consumer_link_verdicts(observed, verdict, words):
    link = consumer_link(observed)
    assert link.name == "consumer" and link.verdict == verdict and words in link.detail, link
    assert link.verdict == OK or link.fix or verdict == UNDECIDABLE
