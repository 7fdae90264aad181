"""A node or access role under a path is refused in Preflight, by name (issue 16 item 4).

A role created with `--path /service/` has the ARN `role/service/atc-node`. The grant's
principal, the assume policy's resource, the bootstrap role's permissions and Verify all
name `role/atc-node`; before, the automation role was simply denied its GetRole (and
without the bootstrap role, Verify judged an ARN that does not exist). Now Preflight
reads the role and refuses it with UnsupportedRolePath, before any write.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from atc_xaccount_cli.local import world as worlds
from tests.engine.conftest import CM, S3, onboard


def with_path(world: dict[str, Any], account: str, role: str, path: str) -> dict[str, Any]:
    world = copy.deepcopy(world)
    world["accounts"][account]["roles"][role]["path"] = path
    return world


@pytest.mark.parametrize(
    ("account", "role"), [(CM, "atc-node"), (S3, "atc-s3-access-keys")], ids=["node role", "access role"]
)
def test_a_role_under_a_path_is_refused_in_preflight_naming_its_arn(sample_world, registered_event, account, role):
    report = onboard(registered_event, with_path(sample_world, account, role, "/service/"), prove=False)

    assert report.result.status == "FAILED"
    assert report.result.error == "UnsupportedRolePath", report.cause_message
    assert f"role {role} in account {account} has the path /service/" in report.cause_message
    assert f"arn:aws:iam::{account}:role/service/{role}" in report.cause_message
    assert [s.name for s in report.result.states][-4:] == ["Preflight", "BulkRowFailed?", "PublishFailed", "Failed"]
    assert report.calls["writes"] == 0
    assert report.world["accounts"][account]["roles"][role]["path"] == "/service/", "the snapshot keeps the path"


@pytest.mark.parametrize("path", ["service/", "/service", "//", "/a b/", 7])
def test_a_path_iam_would_refuse_is_refused_with_its_place_in_the_world(sample_world, path):
    with pytest.raises(worlds.WorldError) as refused:
        worlds.validate_world(with_path(sample_world, CM, "atc-node", path))
    assert str(refused.value).startswith(f"accounts.{CM}.roles.atc-node.path: an IAM path")
