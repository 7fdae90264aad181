"""Every permission of the bootstrap role is needed: take one away and the workflow fails.

Each case removes one action of one statement from the role in both target accounts and
runs the scenario that first needs it: a fresh onboarding, one where the assume policy
exists already, one whose merged trust policy is over the 2,048 characters every account
allows (so the account's raised quota must be read), the offboarding of an onboarded
cluster, an onboarding that must version a policy holding five versions already, or the
rollback of an onboarding whose trust write fails (an injected ServiceFailure). The same
scenario with the whole role is the control.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from atc_xaccount.errors import left_from_cause
from atc_xaccount_cli.local import authz
from atc_xaccount_cli.local.faults import FaultPlan
from tests.leastpriv.conftest import (
    ASSUME_POLICY,
    NODE_ROLE,
    OFFBOARD,
    Case,
    Lab,
    bootstrap_role,
    load,
    with_assume_policy,
)
from tests.leastpriv.conftest import (
    CM as CM_SAMPLE,
)
from tests.leastpriv.conftest import (
    S3 as S3_SAMPLE,
)

#: (statement Sid, action, scenario that needs it, account whose resource it is about)
GRANTS = [
    ("ReadNodeRole", "iam:GetRole", "onboard", "cm"),
    ("ReadNodeRole", "iam:ListAttachedRolePolicies", "existing-policy", "cm"),
    ("AttachAssumePolicyToNodeRole", "iam:AttachRolePolicy", "onboard", "cm"),
    ("AttachAssumePolicyToNodeRole", "iam:DetachRolePolicy", "offboard", "cm"),
    ("ReadPolicyDocuments", "iam:GetPolicy", "onboard", "cm"),
    ("ReadPolicyDocuments", "iam:GetPolicyVersion", "existing-policy", "cm"),
    ("ReadAssumePolicy", "iam:ListPolicyVersions", "offboard", "cm"),
    ("WriteAssumePolicy", "iam:CreatePolicy", "onboard", "cm"),
    ("WriteAssumePolicy", "iam:CreatePolicyVersion", "rotate", "cm"),
    ("WriteAssumePolicy", "iam:DeletePolicyVersion", "rotate", "cm"),
    ("WriteAssumePolicy", "iam:SetDefaultPolicyVersion", "rollback", "cm"),
    ("WriteAssumePolicy", "iam:DeletePolicy", "offboard", "cm"),
    ("AccessRoleTrust", "iam:GetRole", "onboard", "s3"),
    ("AccessRoleTrust", "iam:UpdateAssumeRolePolicy", "onboard", "s3"),
    ("ReadAccessRoleAttachments", "iam:ListAttachedRolePolicies", "onboard", "s3"),
    ("ReadTrustPolicySizeQuota", "iam:GetAccountSummary", "big-trust", "s3"),
    # Preflight proves the planned writes against the role's own policy (issue 16 item 3).
    ("ReadOwnPolicy", "iam:GetRolePolicy", "onboard", "cm"),
    # A node role under a path is read, to be refused by name (issue 16 item 4).
    ("FindRolesUnderAPath", "iam:GetRole", "pathed-role", "cm"),
]

#: The doctor's reads (issue 11): without one, the link it serves cannot be decided.
#: (Sid, action, the link that turns undecidable.) moto authorizes S3 and KMS reads by the
#: key's and bucket's ARN only through the emulator (authz.py, moto_gaps.py).
DOCTOR_GRANTS = [
    ("ReadInlineRolePolicies", "iam:ListRolePolicies", "assume"),
    ("ReadInlineRolePolicies", "iam:GetRolePolicy", "assume"),
    ("ReadBucketAccessSettings", "s3:GetBucketPolicy", "bucket-policy:"),
    ("ReadBucketAccessSettings", "s3:GetEncryptionConfiguration", "kms:"),
    ("ReadBucketKeys", "kms:DescribeKey", "kms:"),
    ("ReadBucketKeys", "kms:GetKeyPolicy", "kms:"),
]

#: The rollback scenario: the trust write fails after the policy was versioned, so the
#: onboarding is rolled back (ServiceFailure is not retried, unlike a failed Verify).
ROLLBACK_FAULT = "MergeTrust/iam:UpdateAssumeRolePolicy=fail"


def _world(lab: Lab, case: Case, scenario: str) -> None:
    base = load("sample-world.json")
    if scenario == "rotate":
        base = with_assume_policy(base, versions=5)
    elif scenario in ("rollback", "existing-policy"):
        base = with_assume_policy(base, versions=1)
    elif scenario == "big-trust":
        base = with_big_trust(base)
    elif scenario == "pathed-role":
        base["accounts"][CM_SAMPLE]["roles"][NODE_ROLE]["path"] = "/service/"
    lab.seed(case, base)


def with_big_trust(world: dict[str, Any]) -> dict[str, Any]:
    """A partner grant with a long external ID: the merged trust policy is over 2,048 characters."""
    world = copy.deepcopy(world)
    for state in world["accounts"].values():
        role = (state.get("roles") or {}).get("atc-s3-access-keys")
        if role is not None:
            role["trust"]["Statement"].append(
                {
                    "Sid": "BigPartner",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "p" * 1500}},
                }
            )
            state["quotas"] = {"AssumeRolePolicySizeQuota": 4096}
    return world


def _run(lab: Lab, case: Case, scenario: str, mutation: authz.Mutation | None) -> Any:
    """Seed, bring the case to where `scenario` starts, restrict the role, run the scenario."""
    _world(lab, case, scenario)
    if scenario == "offboard":
        onboarded = lab.run(case.event(load("cluster-registered.json")))
        assert onboarded.status == "SUCCEEDED", onboarded.cause
    if mutation is not None:
        lab.restrict(case, mutation)
    if scenario == "offboard":
        return lab.run(case.event(load("cluster-deregistered.json")), OFFBOARD)
    if scenario == "rollback":
        lab.emulator.dispatcher.before_call = FaultPlan([ROLLBACK_FAULT]).before_call
    try:
        return lab.run(case.event(load("cluster-registered.json")))
    finally:
        lab.emulator.dispatcher.before_call = None


def _assume_policy_versions(lab: Lab, case: Case) -> list[dict[str, Any]]:
    return lab.iam(case.cm).list_policy_versions(PolicyArn=case.assume_policy_arn)["Versions"]


def test_the_table_is_exactly_what_the_template_grants():
    tables = [(sid, action) for sid, action, _, _ in GRANTS] + [(sid, action) for sid, action, _ in DOCTOR_GRANTS]
    assert sorted(tables) == sorted(bootstrap_role().grants())


def doctor_world() -> dict[str, Any]:
    """The KMS sample world, fixed (the key granted), with an inline policy on each role and a bucket policy."""
    world = load("sample-world-kms.json")
    cm, s3 = world["accounts"][CM_SAMPLE], world["accounts"][S3_SAMPLE]
    s3["kmsKeys"] = {"atc-doctor-key": s3["kmsKeys"].pop("atc-demo-transfers")}
    s3["bucketEncryption"]["atc-demo-transfers"]["KMSMasterKeyID"] = "alias/atc-doctor-key"
    s3["policies"]["atc-s3-policy"]["document"]["Statement"].append(
        {"Sid": "BucketKey", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": f"arn:aws:kms:us-east-1:{S3_SAMPLE}:key/*"}
    )  # fmt: skip
    quiet = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeTags", "Resource": "*"}]}
    cm["roles"][NODE_ROLE]["inline"] = {"tags": quiet}
    s3["roles"]["atc-s3-access-keys"]["inline"] = {"tags": quiet}
    s3["bucketPolicies"] = {
        "atc-demo-transfers": {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": ["arn:aws:s3:::atc-demo-transfers", "arn:aws:s3:::atc-demo-transfers/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
            ],
        }
    }  # fmt: skip
    return world


def _doctor(lab: Lab, case: Case, mutation: authz.Mutation | None) -> tuple[int, dict[str, Any]]:
    import os

    from atc_xaccount.steps.context import StepContext
    from atc_xaccount_cli.doctor import DoctorOptions, doctor

    lab.seed(case, doctor_world())
    onboarded = lab.run(case.event(load("cluster-registered.json")))
    assert onboarded.status == "SUCCEEDED", onboarded.cause
    if mutation is not None:
        lab.restrict(case, mutation)
    return doctor(StepContext.from_env(os.environ, "leastpriv-doctor"), case.cluster, None, DoctorOptions())


def test_control_the_whole_role_lets_the_doctor_decide_every_link(lab: Lab):
    code, body = _doctor(lab, lab.case(), None)
    assert code == 0, body["links"]
    kms = next(x for x in body["links"] if x["link"].startswith("kms:"))
    assert "allowed by the key policy" in kms["detail"], "the world exercises the customer managed key"


@pytest.mark.parametrize(
    ("sid", "action", "link"), DOCTOR_GRANTS, ids=[f"{sid}-{action}" for sid, action, _ in DOCTOR_GRANTS]
)
def test_without_the_permission_the_doctor_cannot_decide(lab: Lab, sid, action, link):
    code, body = _doctor(lab, lab.case(), authz.without(sid, action))
    assert code == 3, body["links"]
    undecided = [x for x in body["links"] if x["verdict"] != "ok"]
    assert undecided and all(x["verdict"] == "undecidable" for x in undecided)
    assert undecided[0]["link"].startswith(link), undecided
    assert "AccessDenied" in json.dumps(undecided)


@pytest.mark.parametrize("scenario", ["onboard", "existing-policy", "big-trust", "offboard", "rotate"])
def test_control_the_whole_role_runs_each_scenario(lab: Lab, scenario):
    case = lab.case()
    result = _run(lab, case, scenario, None)
    assert result.status == "SUCCEEDED", result.cause


def test_control_the_whole_role_refuses_a_role_under_a_path_by_name(lab: Lab):
    case = lab.case()
    result = _run(lab, case, "pathed-role", None)
    assert result.status == "FAILED" and result.error == "UnsupportedRolePath", result.cause
    assert f"arn:aws:iam::{case.cm}:role/service/{NODE_ROLE}" in (result.cause or "")


def test_control_the_whole_role_rolls_a_failed_onboarding_back(lab: Lab):
    case = lab.case()
    result = _run(lab, case, "rollback", None)

    assert result.status == "FAILED" and "UpdateAssumeRolePolicy failed" in result.cause, result.cause
    undone = {u["change"]: u["result"] for u in lab.compensation(result)["undone"]}
    assert undone["assumePolicy"] == "restored"
    versions = _assume_policy_versions(lab, case)
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v1", True)]


@pytest.mark.parametrize(
    ("sid", "action", "scenario", "side"),
    GRANTS,
    ids=[f"{sid}-{action.removeprefix('iam:')}-{scenario}" for sid, action, scenario, _ in GRANTS],
)
def test_without_the_permission_the_workflow_fails(lab: Lab, sid, action, scenario, side):
    case = lab.case()
    account = case.cm if side == "cm" else case.s3
    result = _run(lab, case, scenario, authz.without(sid, action))
    denied = f"the automation role in account {account} may not call {action} on "

    assert result.status == "FAILED"
    if scenario == "rollback":
        # Only the rollback needs it: the onboarding fails (MergeTrust) either way, and the
        # rollback then cannot restore the policy, leaving the new version in force: the
        # execution fails CompensationIncomplete, naming it.
        assert result.error == "CompensationIncomplete", result.cause
        [assumed] = [item for item in left_from_cause(result.cause) if item["change"] == "assumePolicy"]
        assert denied in assumed["error"]
        default = [v["VersionId"] for v in _assume_policy_versions(lab, case) if v["IsDefaultVersion"]]
        assert default == ["v2"]
    else:
        assert denied in (result.cause or ""), result.cause


def test_without_the_condition_statement_nothing_is_attached(lab: Lab):
    """Removing a whole statement is a removal of each of its actions: the first one fails."""
    case = lab.case()
    result = _run(lab, case, "onboard", authz.without("AttachAssumePolicyToNodeRole"))

    assert result.status == "FAILED"
    assert f"the automation role in account {case.cm} may not call iam:AttachRolePolicy on " in result.cause
    attached = lab.iam(case.cm).list_attached_role_policies(RoleName=NODE_ROLE)["AttachedPolicies"]
    assert attached == []
    policies = lab.iam(case.cm).list_policies(Scope="Local")["Policies"]
    assert ASSUME_POLICY not in [p["PolicyName"] for p in policies], "the rollback deleted the policy it created"
