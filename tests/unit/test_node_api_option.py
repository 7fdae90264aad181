"""`detail.nodeApi` (issue 19): validated like every field, before any write; the requests it leads to (pure)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount import access_keys
from atc_xaccount.errors import InvalidEvent
from atc_xaccount.model import ClusterRequest, Defaults, parse_event
from atc_xaccount.node_api import browse_request
from atc_xaccount.redact import fingerprint
from atc_xaccount.steps.validate import DEREGISTERED, validate
from atc_xaccount_cli.local import node_api_schema

ROOT = Path(__file__).resolve().parents[2]
ENV = {"AWS_REGION": "us-east-1", "DEPLOYMENT_ACCOUNT_ID": "123456789012", "NODE_API_SECRET_PREFIX": "atc-node-api/"}
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:atc-node-api/demo-cluster-1"


def event(**node_api: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / "cluster-registered-node-api.json").read_text())
    loaded["detail"]["nodeApi"] = {**loaded["detail"]["nodeApi"], **node_api}
    return loaded


def problems(evt: dict[str, Any], environ: dict[str, str] = ENV) -> list[dict[str, str]]:
    with pytest.raises(InvalidEvent) as raised:
        validate(evt, Defaults(), environ=environ)
    return raised.value.problems


def test_the_sample_event_validates_and_round_trips():
    request = validate(event(), Defaults(), environ=ENV)["request"]
    assert request["nodeApi"] == {
        "url": "https://demo-cluster-1.example:9092",
        "credentialsSecretArn": ARN,
        "path": "/",
    }
    assert ClusterRequest.from_dict(request).to_dict() == request


def test_without_node_api_nothing_changes():
    plain = json.loads((ROOT / "events" / "cluster-registered.json").read_text())
    assert "nodeApi" not in validate(plain, Defaults(), environ=ENV)["request"]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://demo-cluster-1.example:9092", "https only"),
        ("https://node_admin:pw@demo-cluster-1.example:9092", "must not carry a user or password"),
        ("https://demo-cluster-1.example:99999", "port"),
        ("https://demo-cluster-1.example:9092/?x=1", "no query"),
        ("demo-cluster-1.example:9092", "https"),
        (9092, "must be an https:// URL"),
    ],
)
def test_a_bad_url_is_refused_naming_the_field_and_never_echoing_it(url, rule):
    found = problems(event(url=url))
    assert found[0]["field"] == "detail.nodeApi.url" and rule in found[0]["rule"], found
    assert "pw@" not in json.dumps(found)


def test_the_url_is_kept_canonical():
    request = validate(event(url="HTTPS://Demo-Cluster-1.EXAMPLE:9092/"), Defaults(), environ=ENV)["request"]
    assert request["nodeApi"]["url"] == "https://demo-cluster-1.example:9092"


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"credentialsSecretArn": "atc-node-api/demo-cluster-1"}, "credentialsSecretArn", "secret ARN"),
        ({"credentialsSecretArn": ARN.replace(":secret:", ":parameter:")}, "credentialsSecretArn", "secret ARN"),
        ({"path": "incoming"}, "path", 'starting with "/"'),
        ({"path": "/a/../b"}, "path", 'starting with "/"'),
        ({"password": "x"}, "password", "unknown field"),
    ],
)
def test_bad_fields_are_refused_with_their_rule(change, field, rule):
    found = problems(event(**change))
    assert any(p["field"] == f"detail.nodeApi.{field}" and rule in p["rule"] for p in found), found


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (ARN.replace("us-east-1", "eu-west-1"), "a secret in us-east-1"),
        (ARN.replace("123456789012", "999999999999"), "account 123456789012"),
        (ARN.replace("atc-node-api/", "other/"), "named atc-node-api/... (the template parameter NodeApiSecretPrefix)"),
    ],
)
def test_a_secret_the_steps_may_not_read_is_refused_before_any_write(arn, expected):
    found = problems(event(credentialsSecretArn=arn))
    assert found[0]["field"] == "detail.nodeApi.credentialsSecretArn" and expected in found[0]["rule"], found


def test_the_key_needs_a_bucket_but_a_deregistration_does_not():
    registered = event()
    del registered["detail"]["buckets"]
    assert problems(registered)[0]["field"] == "detail.nodeApi"
    deregistered = copy.deepcopy(registered)
    deregistered["detail-type"] = "Cluster Deregistered"
    assert validate(deregistered, Defaults(), DEREGISTERED, environ=ENV)["request"]["nodeApi"]["path"] == "/"


def test_every_problem_of_the_block_is_reported_at_once():
    found = problems(event(url="http://x", credentialsSecretArn="nope", path="x"))
    assert {p["field"] for p in found} == {f"detail.nodeApi.{k}" for k in ("url", "credentialsSecretArn", "path")}


# --- the requests (the vendored Node API 4.4.6 schema) ----------------------------------------


def _storage(external_id: str = "ext-id-1") -> dict[str, Any]:
    return access_keys.storage(
        bucket="atc-demo-transfers",
        path="/",
        endpoint=access_keys.s3_endpoint("aws", "us-east-1"),
        role_arn="arn:aws:iam::222222222222:role/atc-s3-access-keys",
        external_id=external_id,
        cluster_id="demo-cluster-1",
    )


def test_the_schema_file_is_the_vendored_node_api_excerpt():
    doc = node_api_schema.document()
    assert doc["info"] == {"title": "IBM Aspera Node API", "version": "4.4.6"}
    assert "laurent-martin/aspera-api-examples" in doc["x-vendored"]["from"]
    assert node_api_schema.definition("accessKeyRequest")["required"] == ["storage"]


def test_the_requests_the_client_builds_are_valid_node_api_requests():
    create = access_keys.create_body(access_keys.new_key_id(), access_keys.new_key_secret(), _storage())
    assert node_api_schema.problems(create, "accessKeyRequest") == []
    assert node_api_schema.problems(access_keys.update_body(_storage()), "accessKeyPUTRequest") == []
    assert node_api_schema.problems(browse_request("/"), "filesBrowseRequest") == []


def test_the_schema_check_catches_what_a_real_node_would_silently_ignore():
    typo = access_keys.create_body("atcx1", "s", _storage())
    typo["storage"]["credentials"]["assume_role_externalid"] = typo["storage"]["credentials"].pop(
        "assume_role_external_id"
    )
    assert node_api_schema.problems(typo, "accessKeyRequest") == [
        "storage.credentials.assume_role_externalid: not a field of accessKeyRequest"
    ]
    assert node_api_schema.problems({"storage": {"bucket": 3}}, "accessKeyRequest") == [
        "storage.bucket: 3 is not of type 'string'",
        "storage: 'type' is a required property",
    ]
    assert node_api_schema.problems({"id": "x", "storage": {"type": "aws_s3"}}, "accessKeyPUTRequest") == [
        "id: not a field of accessKeyPUTRequest"
    ]


def test_endpoints_and_session_names():
    assert access_keys.s3_endpoint("aws", "eu-west-1") == "s3.amazonaws.com"
    assert access_keys.s3_endpoint("aws-cn", "cn-north-1") == "s3.cn-north-1.amazonaws.com.cn"
    assert access_keys.s3_endpoint("aws-us-gov", "us-gov-west-1") == "s3.us-gov-west-1.amazonaws.com"
    assert len(access_keys.session_name("c" * 64)) == 64


def test_differences_name_what_is_not_the_clusters_key_and_never_the_external_id():
    wanted = {
        "bucket": "atc-demo-transfers",
        "path": "/",
        "endpoint": "s3.amazonaws.com",
        "role_arn": "arn:aws:iam::222222222222:role/atc-s3-access-keys",
        "external_id_fingerprint": fingerprint("ext-id-1"),
    }
    shown = {"storage": {k: v for k, v in _storage().items() if k != "credentials"}}
    assert access_keys.differences(shown, **wanted) == []
    moved = copy.deepcopy(shown)
    moved["storage"]["bucket"] = "elsewhere"
    assert access_keys.differences(moved, **wanted) == ["storage.bucket is 'elsewhere', not 'atc-demo-transfers'"]
    # A Node API that shows the credentials: the external ID is compared by fingerprint only.
    told = {"storage": _storage("another-id")}
    found = access_keys.differences(told, **wanted)
    assert found == ["storage.credentials.assume_role_external_id is not the cluster's external ID"]
    assert "another-id" not in json.dumps(found)


def test_parse_event_alone_accepts_the_block_the_deployment_checks_come_after():
    request = parse_event(event(credentialsSecretArn=ARN.replace("us-east-1", "eu-west-1")), Defaults())
    assert request.node_api is not None and request.node_api.secret_name == "atc-node-api/demo-cluster-1"
