"""Every quota before the first write: a node role at its managed-policy quota (issue 16 item 2).

IAM lets a role have 10 managed policies attached (`AttachedPoliciesPerRoleQuota`,
raisable); the 11th AttachRolePolicy fails `LimitExceeded`, after the assume policy was
already created. Preflight counts the node role's attachments and refuses first, naming
the quota; the emulator enforces the quota as IAM does, so the old order fails here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.engine.conftest import CM, onboard


def with_attached(world: dict[str, Any], count: int, quota: int | None = None) -> dict[str, Any]:
    """The sample world with `count` managed policies of the account attached to atc-node."""
    world = copy.deepcopy(world)
    account = world["accounts"][CM]
    for index in range(count):
        account["policies"][f"ops-{index}"] = {
            "document": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeTags", "Resource": "*"}],
            }
        }
        account["roles"]["atc-node"].setdefault("attached", []).append(f"arn:aws:iam::{CM}:policy/ops-{index}")
    if quota is not None:
        account["quotas"] = {"AttachedPoliciesPerRoleQuota": quota}
    return world


def test_a_node_role_at_its_quota_is_refused_in_preflight_naming_the_quota(sample_world, registered_event):
    report = onboard(registered_event, with_attached(sample_world, 10), prove=False)

    assert report.result.status == "FAILED"
    assert report.result.error == "QuotaExceeded", report.cause_message
    assert [s.name for s in report.result.states][-4:] == ["Preflight", "BulkRowFailed?", "PublishFailed", "Failed"]
    assert "AttachedPoliciesPerRoleQuota" in report.cause_message
    assert "role atc-node in account 111111111111 would need 11 against the quota" in report.cause_message
    assert report.calls["writes"] == 0, "nothing was written, not even the assume policy"
    assert "atc-s3-assume-role" not in report.world["accounts"][CM]["policies"]


def test_a_raised_quota_leaves_room_and_is_read_only_when_it_matters(sample_world, registered_event):
    raised = onboard(registered_event, with_attached(sample_world, 10, quota=11), prove=False)
    roomy = onboard(registered_event, with_attached(sample_world, 9), prove=False)

    assert raised.result.status == "SUCCEEDED", raised.cause_message
    assert raised.calls["by_operation"]["iam:GetAccountSummary"] == 1
    assert roomy.result.status == "SUCCEEDED", roomy.cause_message
    assert "iam:GetAccountSummary" not in roomy.calls["by_operation"], "9 attached: the default 10 leaves room"
    attached = raised.world["accounts"][CM]["roles"]["atc-node"]["attached"]
    assert f"arn:aws:iam::{CM}:policy/atc-s3-assume-role" in attached and len(attached) == 11


@pytest.fixture
def emulated_account():
    from atc_xaccount_cli.local.engine import Emulator
    from tests.engine.conftest import ROOT

    with Emulator(ROOT, enforce_automation_role=False) as emulator:
        emulator.seed(with_attached({"accounts": {CM: {"roles": {"atc-node": {"trust": {}}}, "policies": {}}}}, 10))
        yield emulator.ensure_account(CM).client("iam")


def test_the_emulator_refuses_the_eleventh_attachment_as_iam_does(emulated_account: Any):
    iam = emulated_account
    statement = {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    doc = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    arn = iam.create_policy(PolicyName="one-too-many", PolicyDocument=doc)["Policy"]["Arn"]

    with pytest.raises(ClientError) as refused:
        iam.attach_role_policy(RoleName="atc-node", PolicyArn=arn)
    assert refused.value.response["Error"]["Code"] == "LimitExceeded"
    assert refused.value.response["Error"]["Message"] == "Cannot exceed quota for PoliciesPerRole: 10"

    again = f"arn:aws:iam::{CM}:policy/ops-0"
    iam.attach_role_policy(RoleName="atc-node", PolicyArn=again)  # already attached: no change, no error
    assert iam.get_policy(PolicyArn=again)["Policy"]["AttachmentCount"] == 1
