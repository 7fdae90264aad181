"""The bootstrap allows it, or Preflight says so (issue 16 item 3).

Preflight's reads are allowed for names a stack instance does not manage (GetPolicy on
every policy of the account, for the doctor), so only evaluating the automation role's
own policy proves the writes. A name it does not allow fails in Preflight, with the
parameter to set, before any write or lock.
"""

from __future__ import annotations

from atc_xaccount_cli.local import authz
from tests.leastpriv.conftest import Lab, load

CUSTOM_POLICY = "atc-transfer-assume"


def test_a_custom_assume_policy_the_bootstrap_does_not_allow_fails_in_preflight(lab: Lab):
    case = lab.case()
    lab.seed(case, load("sample-world.json"))

    with lab.emulator.counting() as calls:
        result = lab.run(case.event(load("cluster-registered.json"), assumePolicyName=CUSTOM_POLICY))

    assert result.status == "FAILED"
    assert result.error == "AutomationRoleDenied", result.cause
    message = result.cause or ""
    assert f"the automation role in account {case.cm} may not call iam:CreatePolicy on " in message
    assert f"AssumePolicyName={CUSTOM_POLICY}" in message
    assert "Preflight evaluated the automation role's policy" in message
    # Not a bulk row's onboarding (bulk-<tag>-<line>): nothing reserved to withdraw.
    assert [s.name for s in result.states][-4:] == ["Preflight", "BulkRowFailed?", "PublishFailed", "Failed"]
    summary = calls.summary()
    assert summary["writes"] == 0, f"no write and no lock: {summary}"


def test_the_proof_reads_the_role_s_own_policy_once_per_account_and_not_on_a_rerun(lab: Lab):
    case = lab.case()
    lab.seed(case, load("sample-world.json"))

    with lab.emulator.counting() as calls:
        first = lab.run(case.event(load("cluster-registered.json")))
    assert first.status == "SUCCEEDED", first.cause
    assert calls.summary()["by_operation"]["iam:GetRolePolicy"] == 2, "the cluster manager and the S3 account"

    with lab.emulator.counting() as calls:
        again = lab.run(case.event(load("cluster-registered.json")))
    assert again.status == "SUCCEEDED", again.cause
    assert "iam:GetRolePolicy" not in calls.summary()["by_operation"], "nothing to write: nothing to prove"


def test_a_stack_instance_older_than_the_proof_is_told_to_update(lab: Lab):
    case = lab.case()
    lab.seed(case, load("sample-world.json"))
    lab.restrict(case, authz.without("ReadOwnPolicy"))

    with lab.emulator.counting() as calls:
        result = lab.run(case.event(load("cluster-registered.json")))

    assert result.error == "AutomationRoleDenied", result.cause
    assert "may not call iam:GetRolePolicy on " in (result.cause or "")
    assert "update that account's bootstrap stack instance to the current bootstrap/automation-role.yaml" in (
        result.cause or ""
    )
    assert calls.summary()["writes"] == 0
