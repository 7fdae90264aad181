"""Who may ask: the sender is the subject, listed pairs only, fail closed (pure)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount.authorization import AccountPairs, PairsMisconfigured, authorize_pair
from atc_xaccount.bulk import parse_bulk
from atc_xaccount.errors import RequestNotAuthorized
from atc_xaccount.model import Defaults
from atc_xaccount.steps.admission import check_owner
from atc_xaccount.steps.validate import DEREGISTERED, REGISTERED, ROTATE, validate

ROOT = Path(__file__).resolve().parents[2]
CM, S3, OTHER = "111111111111", "222222222222", "444444444444"
SAMPLE = AccountPairs.parse(f"{CM}:{S3}")


def event(**detail: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / "cluster-registered.json").read_text())
    loaded["detail"].update(detail)
    return loaded


def refusal(call: Any) -> RequestNotAuthorized:
    with pytest.raises(RequestNotAuthorized) as caught:
        call()
    return caught.value


def test_a_whole_event_speaks_only_for_the_account_that_sent_it():
    sent = event()
    sent["account"] = OTHER

    error = refusal(lambda: validate(sent, Defaults(), REGISTERED, SAMPLE))

    assert OTHER in str(error) and CM in str(error)
    assert "event.account must equal detail.clusterManagerAccountId" in str(error)
    assert error.to_dict()["sender"] == OTHER


def test_the_sender_check_holds_without_pairs_and_for_every_workflow():
    for detail_type in (REGISTERED, DEREGISTERED):
        sent = {**event(), "detail-type": detail_type, "account": OTHER}
        refusal(lambda sent=sent, detail_type=detail_type: validate(sent, Defaults(), detail_type))
    rotation = {
        **event(),
        "detail-type": ROTATE,
        "account": OTHER,
        "detail": {"clusterId": "c", "clusterManagerAccountId": CM, "s3AccountId": S3, "phase": "start"},
    }
    refusal(lambda: validate(rotation, Defaults(), ROTATE, SAMPLE))


def test_a_bare_detail_is_authorized_by_whoever_may_start_the_state_machine():
    result = validate(event()["detail"], Defaults(), REGISTERED, SAMPLE)
    assert result["request"]["clusterManagerAccountId"] == CM and result["repair"] is False


def test_a_pair_outside_the_list_is_refused_naming_the_pair_and_the_parameter():
    error = refusal(lambda: validate(event(s3AccountId="333333333333"), Defaults(), REGISTERED, SAMPLE))

    message = str(error)
    assert f"{CM}:333333333333" in message and "AllowedAccountPairs" in message
    assert error.to_dict()["pair"] == f"{CM}:333333333333"
    assert error.to_dict()["parameter"] == "AllowedAccountPairs"


def test_an_empty_list_admits_nothing_and_says_what_to_set():
    error = refusal(lambda: authorize_pair(AccountPairs.parse(""), CM, S3))
    assert "is empty, which admits no pair" in str(error)
    assert f"add {CM}:{S3}" in str(error)


def test_cm_star_admits_any_s3_account_of_that_cluster_manager_only():
    pairs = AccountPairs.parse(f" {CM}:* , {OTHER}:{S3} ,")
    assert pairs.admits(CM, "333333333333") and pairs.admits(CM, CM)
    assert pairs.admits(OTHER, S3) and not pairs.admits(OTHER, "333333333333")
    assert not pairs.admits(S3, CM)


@pytest.mark.parametrize("entry", ["111111111111", "*:222222222222", "11111111111:222222222222", "a:b", "1:2:3"])
def test_an_entry_that_is_no_pair_is_a_deployment_error_naming_it(entry):
    with pytest.raises(PairsMisconfigured, match="AllowedAccountPairs entry"):
        AccountPairs.parse(f"{CM}:{S3},{entry}")


def test_the_template_pattern_admits_exactly_what_the_parser_admits():
    from atc_xaccount_cli.local.template import load_yaml

    pattern = load_yaml(ROOT / "template.yaml")["Parameters"]["AllowedAccountPairs"]["AllowedPattern"]
    import re

    for entry in (f"{CM}:{S3}", f"{CM}:*", ""):
        assert re.fullmatch(pattern, entry), entry
        AccountPairs.parse(entry)
    for entry in ("111111111111", "*:222222222222", f"{CM}:{S3}:{S3}", f"{CM}: {S3}"):
        assert not re.fullmatch(pattern, entry), entry


def test_deregistration_and_repair_are_held_to_the_pairs_too():
    gone = {**event(s3AccountId="333333333333"), "detail-type": DEREGISTERED}
    assert "deregistration" in str(refusal(lambda: validate(gone, Defaults(), DEREGISTERED, SAMPLE)))
    repair = {"repairOf": {**event()["detail"], "s3AccountId": "333333333333"}}
    assert "repair connects" in str(refusal(lambda: validate(repair, Defaults(), REGISTERED, SAMPLE)))
    assert validate({"repairOf": event()["detail"]}, Defaults(), REGISTERED, SAMPLE)["repair"] is True


def test_a_bulk_row_outside_the_pairs_is_rejected_with_its_line_and_the_others_go_on():
    rows = [
        {"clusterId": "ok-1", "clusterManagerAccountId": CM, "s3AccountId": S3},
        {"clusterId": "far-1", "clusterManagerAccountId": CM, "s3AccountId": "333333333333"},
        {**event(clusterId="forged-1"), "account": OTHER},
    ]
    text = "\n".join(json.dumps(r) for r in rows)

    items, rejected = parse_bulk("rows.jsonl", text, Defaults(), SAMPLE)

    assert [i["clusterId"] for i in items] == ["ok-1"]
    assert [r["line"] for r in rejected] == [2, 3]
    assert all(r["error"].startswith("RequestNotAuthorized: ") for r in rejected)
    assert "AllowedAccountPairs" in rejected[0]["error"] and OTHER in rejected[1]["error"]


def test_a_cluster_belongs_to_the_account_that_registered_it():
    from atc_xaccount.model import ClusterRequest

    request = ClusterRequest.from_dict(
        {
            **event(clusterManagerAccountId=OTHER)["detail"],
            "nodeRoleName": "atc-node",
            "accessRoleName": "atc-s3-access-keys",
            "assumePolicyName": "atc-s3-assume-role",
            "accessPolicyName": "atc-s3-policy",
        }
    )
    entry = {"clusterId": "demo-cluster-1", "clusterManagerAccountId": CM, "state": "READY"}

    error = refusal(lambda: check_owner(entry, request))

    assert f"belongs to cluster manager account {CM}" in str(error)
    check_owner({**entry, "state": "REVOKED"}, request)  # deregistered everywhere: free again
    check_owner(None, request)
    check_owner(copy.deepcopy({**entry, "clusterManagerAccountId": OTHER}), request)
