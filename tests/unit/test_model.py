"""Event validation: every DESIGN 3.1 rule, all problems reported at once, nothing leaked."""

from __future__ import annotations

from typing import Any

import pytest

from atc_xaccount.errors import InvalidEvent
from atc_xaccount.model import ClusterRequest, Defaults, bucket_name_problem, parse_event

SECRET = "SuperSecretExternalId0000000000001"


def detail(**changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "clusterId": "cluster-1",
        "clusterManagerAccountId": "111111111111",
        "s3AccountId": "222222222222",
    }
    d.update(changes)
    return {k: v for k, v in d.items() if v is not _DROP}


_DROP = object()


def envelope(body: Any, **changes: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Cluster Registered",
        "source": "atc.cluster-manager",
        "account": "999999999999",
        "time": "2024-01-01T00:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": body,
    }
    e.update(changes)
    return {k: v for k, v in e.items() if v is not _DROP}


def problems(event: Any, **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEvent) as info:
        parse_event(event, Defaults(), **kw)
    return [(p["field"], p["rule"]) for p in info.value.problems]


def test_minimal_detail_gets_defaults() -> None:
    request = parse_event(detail(), Defaults())
    assert request == ClusterRequest(
        cluster_id="cluster-1",
        cluster_manager_account_id="111111111111",
        s3_account_id="222222222222",
        buckets=(),
        external_id=None,
        node_role_name="atc-node",
        access_role_name="atc-s3-access-keys",
        assume_policy_name="atc-s3-assume-role",
        access_policy_name="atc-s3-policy",
    )
    assert not request.same_account


def test_full_envelope_round_trips() -> None:
    body = detail(
        buckets=["data-1", "logs.example"],
        externalId=SECRET,
        nodeRoleName="n",
        accessRoleName="a",
        assumePolicyName="p1",
        accessPolicyName="p2",
    )
    request = parse_event(envelope(body), Defaults())
    assert request.to_dict() == body
    assert list(request.to_dict()) == [
        "clusterId",
        "clusterManagerAccountId",
        "s3AccountId",
        "buckets",
        "externalId",
        "nodeRoleName",
        "accessRoleName",
        "assumePolicyName",
        "accessPolicyName",
    ]
    assert ClusterRequest.from_dict(request.to_dict()) == request
    assert parse_event(request.to_dict(), Defaults()) == request


def test_to_dict_omits_missing_external_id_and_lists_buckets() -> None:
    d = parse_event(detail(), Defaults()).to_dict()
    assert "externalId" not in d and d["buckets"] == []


def test_env_defaults_apply() -> None:
    defaults = Defaults.from_env(
        {
            "DEFAULT_NODE_ROLE_NAME": "node-x",
            "DEFAULT_ACCESS_ROLE_NAME": "",
            "OTHER": "y",
            "DEFAULT_ASSUME_POLICY_NAME": "assume-x",
            "DEFAULT_ACCESS_POLICY_NAME": "access-x",
        }
    )
    assert defaults == Defaults("node-x", "atc-s3-access-keys", "assume-x", "access-x")
    request = parse_event(detail(accessRoleName="given"), defaults)
    assert (request.node_role_name, request.access_role_name) == ("node-x", "given")


def test_bad_default_fails_at_configuration() -> None:
    with pytest.raises(ValueError):
        Defaults.from_env({"DEFAULT_NODE_ROLE_NAME": "has space"})


def test_same_account_request() -> None:
    assert parse_event(detail(s3AccountId="111111111111"), Defaults()).same_account


@pytest.mark.parametrize(
    ("body", "field", "rule_part"),
    [
        (detail(clusterId=_DROP), "detail.clusterId", "required"),
        (detail(clusterId=None), "detail.clusterId", "required"),
        (detail(clusterId=""), "detail.clusterId", "1-64"),
        (detail(clusterId="a" * 65), "detail.clusterId", "1-64"),
        (detail(clusterId="has space"), "detail.clusterId", "1-64"),
        (detail(clusterId="é"), "detail.clusterId", "1-64"),
        (detail(clusterId=7), "detail.clusterId", "must be a string"),
        (detail(clusterManagerAccountId=_DROP), "detail.clusterManagerAccountId", "required"),
        (detail(clusterManagerAccountId="11111111111"), "detail.clusterManagerAccountId", "12 digits"),
        (detail(s3AccountId="2222222222222"), "detail.s3AccountId", "12 digits"),
        (detail(s3AccountId="22222222222a"), "detail.s3AccountId", "12 digits"),
        (detail(s3AccountId="\uff12" * 12), "detail.s3AccountId", "12 digits"),
        (detail(s3AccountId=222222222222), "detail.s3AccountId", "not a number"),
        (detail(s3AccountId=True), "detail.s3AccountId", "12 digits"),
        (detail(buckets="data-1"), "detail.buckets", "must be a list"),
        (detail(buckets=["data-1", "Data-2"]), "detail.buckets[1]", "lowercase"),
        (detail(buckets=["data-1", "data-1"]), "detail.buckets[1]", "duplicate of detail.buckets[0]"),
        (detail(buckets=[3]), "detail.buckets[0]", "must be a string"),
        (detail(externalId="x"), "detail.externalId", "2-1224"),
        (detail(externalId="a" * 1225), "detail.externalId", "2-1224"),
        (detail(externalId="has space"), "detail.externalId", "2-1224"),
        (detail(externalId=123456), "detail.externalId", "2-1224"),
        (detail(nodeRoleName=""), "detail.nodeRoleName", "1-64"),
        (detail(nodeRoleName="n" * 65), "detail.nodeRoleName", "1-64"),
        (detail(accessRoleName="bad/name"), "detail.accessRoleName", "1-64"),
        (detail(accessRoleName="rôle"), "detail.accessRoleName", "1-64"),
        (detail(assumePolicyName="p" * 129), "detail.assumePolicyName", "1-128"),
        (detail(accessPolicyName="bad name"), "detail.accessPolicyName", "1-128"),
        (detail(extra=1), "detail.extra", "unknown field"),
        (detail(ClusterId="x"), "detail.ClusterId", "unknown field"),
    ],
)
def test_detail_rules(body: dict[str, Any], field: str, rule_part: str) -> None:
    found = problems(body)
    assert len(found) == 1, found
    assert found[0][0] == field
    assert rule_part in found[0][1]


@pytest.mark.parametrize(
    "body",
    [
        detail(clusterId="a" * 64),
        detail(clusterId="A.b_c-9"),
        detail(externalId="ab"),
        detail(externalId="a" * 1224),
        detail(externalId="A-z0+=,.@:/9"),
        detail(nodeRoleName="n" * 64, accessRoleName="a_b+c=d,e.f@g-h"),
        detail(assumePolicyName="p" * 128),
        detail(buckets=[]),
        detail(buckets=None),
        detail(externalId=None),
        detail(clusterManagerAccountId="000000000001"),
    ],
)
def test_detail_accepted(body: dict[str, Any]) -> None:
    parse_event(body, Defaults())


@pytest.mark.parametrize(
    ("name", "rule_part"),
    [
        ("ab", "3-63"),
        ("a" * 64, "3-63"),
        ("Bucket", "lowercase"),
        ("my_bucket", "lowercase"),
        ("-bucket", "begin and end"),
        ("bucket-", "begin and end"),
        (".bucket", "begin and end"),
        ("my..bucket", "adjacent dots"),
        ("192.168.5.4", "IP address"),
        ("xn--bucket", "xn--"),
        ("sthree-bucket", "sthree-"),
        ("amzn-s3-demo-bucket", "amzn-s3-demo-"),
        ("bucket-s3alias", "-s3alias"),
        ("bucket--ol-s3", "--ol-s3"),
        ("bucket.mrap", ".mrap"),
        ("bucket--x-s3", "--x-s3"),
    ],
)
def test_bucket_rules(name: str, rule_part: str) -> None:
    rule = bucket_name_problem(name)
    assert rule is not None and rule_part in rule


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket-1", "1bucket9", "192.168.5.4a"])
def test_bucket_names_accepted(name: str) -> None:
    assert bucket_name_problem(name) is None


def test_all_problems_reported_together() -> None:
    body = detail(clusterId="", s3AccountId=2, buckets=["ok-bucket", "BAD"], externalId="x", surprise=True)
    with pytest.raises(InvalidEvent) as info:
        parse_event(body, Defaults())
    err = info.value
    assert [p["field"] for p in err.problems] == [
        "detail.clusterId",
        "detail.s3AccountId",
        "detail.buckets[1]",
        "detail.externalId",
        "detail.surprise",
    ]
    assert err.field == "detail.clusterId"
    assert str(err).startswith("detail.clusterId: must be 1-64 characters")
    assert str(err).count("; ") == 4


@pytest.mark.parametrize(
    ("event", "field", "rule_part"),
    [
        (
            envelope(detail(), **{"detail-type": "Cluster Deregistered"}),
            "event.detail-type",
            "must be 'Cluster Registered'",
        ),
        (envelope(detail(), **{"detail-type": _DROP}), "event.detail-type", "required"),
        (envelope(detail(), surprise=1), "event.surprise", "unknown field"),
        (envelope("not-a-dict"), "detail", "JSON object"),
        (envelope(None), "detail", "JSON object"),
        ([detail()], "event", "JSON object"),
        ("{}", "event", "JSON object"),
    ],
)
def test_envelope_rules(event: Any, field: str, rule_part: str) -> None:
    found = problems(event)
    assert found[0][0] == field and rule_part in found[0][1]


def test_expected_detail_type_parameter() -> None:
    event = envelope(detail(), **{"detail-type": "Cluster Deregistered"})
    parse_event(event, Defaults(), expected_detail_type="Cluster Deregistered")
    with pytest.raises(InvalidEvent):
        parse_event(event, Defaults())


def test_envelope_and_detail_problems_reported_together() -> None:
    found = problems(envelope(detail(s3AccountId="x"), **{"detail-type": "Nope"}))
    assert [f for f, _ in found] == ["event.detail-type", "detail.s3AccountId"]


def test_replayed_event_is_accepted() -> None:
    parse_event(envelope(detail(), **{"replay-name": "replay-1"}), Defaults())


@pytest.mark.parametrize(
    "body",
    [
        detail(externalId=SECRET + " "),
        detail(externalID=SECRET),  # misspelt: unknown field
        detail(external_id=SECRET),
    ],
)
def test_external_id_never_in_error(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(body, Defaults())
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.to_dict())


def test_error_records_offending_value() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(detail(s3AccountId="12345"), Defaults())
    assert info.value.to_dict() == {
        "error": "InvalidEvent",
        "message": "detail.s3AccountId: must be 12 digits",
        "account": None,
        "field": "detail.s3AccountId",
        "rule": "must be 12 digits",
        "value": "12345",
        "problems": [{"field": "detail.s3AccountId", "rule": "must be 12 digits"}],
    }


def test_from_dict_requires_resolved_names() -> None:
    with pytest.raises(InvalidEvent) as info:
        ClusterRequest.from_dict(detail())
    assert [p["field"] for p in info.value.problems] == [
        "request.nodeRoleName",
        "request.accessRoleName",
        "request.assumePolicyName",
        "request.accessPolicyName",
    ]
    with pytest.raises(InvalidEvent):
        ClusterRequest.from_dict(["not", "a", "dict"])


def test_repr_never_shows_the_external_id() -> None:
    request = parse_event(detail(externalId=SECRET), Defaults())
    assert request.external_id == SECRET
    assert SECRET not in repr(request)
