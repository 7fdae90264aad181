"""iam_ops on moto: ensure-style writes that write only on a difference, with before/after records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atc_xaccount import iam_ops
from atc_xaccount.redact import Fingerprints
from tests.ops.conftest import ASSUME_POLICY_ARN, CM, NODE_ARN, S3, create_role, iam_in, watch

POLICY_NAME = "atc-s3-assume-role"
pytestmark = pytest.mark.usefixtures("aws")

#: The records are redacted with the deployment's keyed fingerprints.
FPS = Fingerprints(b"ops-test-key")


def assume_doc(*accounts: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AtcXaccountAssumeAccessRoles",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": [f"arn:aws:iam::{a}:role/atc-s3-access-keys" for a in accounts],
            }
        ],
    }


def default_document(iam: Any, arn: str = ASSUME_POLICY_ARN) -> dict[str, Any]:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def versions(iam: Any, arn: str = ASSUME_POLICY_ARN) -> dict[str, bool]:
    """Version id -> is default."""
    return {v["VersionId"]: v["IsDefaultVersion"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]}


def write(iam: Any, desired: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    current = iam_ops.get_policy_state(iam, CM, ASSUME_POLICY_ARN, with_versions=True)
    return iam_ops.write_managed_policy(
        iam, CM, name=POLICY_NAME, arn=ASSUME_POLICY_ARN, current=current, desired=desired, dry_run=dry_run
    )


def five_versions(iam: Any, default: str) -> dict[str, dict[str, Any]]:
    """Policy with v1..v5, each a different document; `default` made the default version."""
    docs = {f"v{n}": assume_doc(f"{n:012d}") for n in range(1, 6)}
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=json.dumps(docs["v1"]))
    for n in range(2, 6):
        version = f"v{n}"
        iam.create_policy_version(
            PolicyArn=ASSUME_POLICY_ARN, PolicyDocument=json.dumps(docs[version]), SetAsDefault=version == default
        )
    assert versions(iam) == {v: v == default for v in docs}
    return docs


# --- write_managed_policy --------------------------------------------------------------


def test_absent_policy_is_created_with_exactly_the_desired_document():
    iam = iam_in(CM)
    calls = watch(iam)
    desired = assume_doc(S3)

    record = write(iam, desired)

    assert default_document(iam) == desired
    assert versions(iam) == {"v1": True}
    assert record["action"] == "created"
    assert record["before"] is None
    assert record["after"] == desired
    assert record["applied"] is True
    assert calls.writes == ["CreatePolicy"]


def test_changed_document_becomes_a_new_default_version():
    iam = iam_in(CM)
    first, second = assume_doc(S3), assume_doc(S3, "333333333333")
    write(iam, first)

    record = write(iam, second)

    assert record["action"] == "versioned"
    assert (record["before"], record["after"]) == (first, second)
    assert (record["beforeVersion"], record["afterVersion"]) == ("v1", "v2")
    assert record["retiredVersion"] is None
    assert versions(iam) == {"v1": False, "v2": True}
    assert default_document(iam) == second


@pytest.mark.parametrize(
    ("default", "retired"),
    [
        ("v1", "v2"),  # the oldest version is the default: the next oldest goes
        ("v3", "v1"),
        ("v5", "v1"),
    ],
)
def test_with_five_versions_the_oldest_non_default_is_retired_first(default, retired):
    iam = iam_in(CM)
    docs = five_versions(iam, default)
    calls = watch(iam)
    desired = assume_doc(S3)

    record = write(iam, desired)

    assert calls.writes == ["DeletePolicyVersion", "CreatePolicyVersion"]
    assert calls.params_of("DeletePolicyVersion")[0]["VersionId"] == retired
    assert record["retiredVersion"] == {"versionId": retired, "document": docs[retired], "copies": 1}
    assert (record["before"], record["after"]) == (docs[default], desired)
    remaining = versions(iam)
    assert len(remaining) == 5
    assert retired not in remaining
    assert default in remaining, "the previous default version must never be deleted"
    assert remaining == {**dict.fromkeys(set(docs) - {retired}, False), "v6": True}
    assert default_document(iam) == desired


def test_semantically_equal_document_is_unchanged_with_zero_writes():
    iam = iam_in(CM)
    stored = assume_doc(S3, "333333333333")
    write(iam, stored)
    # Same meaning, different spelling: action list, case, resource order.
    desired = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AtcXaccountAssumeAccessRoles",
                "Effect": "Allow",
                "Action": ["STS:AssumeRole"],
                "Resource": list(reversed(stored["Statement"][0]["Resource"])),
            }
        ],
    }
    calls = watch(iam)

    record = write(iam, desired)

    assert record["action"] == "unchanged"
    assert record["afterVersion"] == record["beforeVersion"] == "v1"
    assert calls.operations, "the read before the decision went through the watched client"
    assert calls.writes == []
    assert versions(iam) == {"v1": True}
    assert default_document(iam) == stored


def test_dry_run_of_a_create_gives_the_real_record_and_writes_nothing():
    iam = iam_in(CM)
    calls = watch(iam)
    desired = assume_doc(S3)

    dry = write(iam, desired, dry_run=True)

    assert calls.writes == []
    assert iam.list_policies(Scope="Local")["Policies"] == []
    real = write(iam, desired)
    assert dry["applied"] is False
    assert {k: v for k, v in dry.items() if k != "applied"} == {k: v for k, v in real.items() if k != "applied"}


def test_dry_run_with_five_versions_reports_the_retirement_without_writing():
    iam = iam_in(CM)
    five_versions(iam, "v1")
    calls = watch(iam)
    desired = assume_doc(S3)

    dry = write(iam, desired, dry_run=True)

    assert calls.writes == []
    assert versions(iam) == {"v1": True, "v2": False, "v3": False, "v4": False, "v5": False}
    real = write(iam, desired)
    same_keys = ("action", "before", "after", "beforeVersion", "retiredVersion")
    assert {k: dry[k] for k in same_keys} == {k: real[k] for k in same_keys}
    assert dry["applied"] is False


# --- ensure_attached -------------------------------------------------------------------


def test_ensure_attached_attaches_then_is_a_no_op():
    iam = iam_in(CM)
    create_role(iam, "atc-node")
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=json.dumps(assume_doc(S3)))
    calls = watch(iam)

    first = iam_ops.ensure_attached(iam, CM, role_name="atc-node", policy_arn=ASSUME_POLICY_ARN)
    second = iam_ops.ensure_attached(iam, CM, role_name="atc-node", policy_arn=ASSUME_POLICY_ARN)

    attached = iam.list_attached_role_policies(RoleName="atc-node")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ASSUME_POLICY_ARN]
    assert (first["action"], first["before"], first["after"]) == ("attached", False, True)
    assert (second["action"], second["before"], second["after"]) == ("unchanged", True, True)
    assert calls.operations.count("AttachRolePolicy") == 1
    assert calls.writes == ["AttachRolePolicy"]


def test_ensure_attached_dry_run_does_not_attach():
    iam = iam_in(CM)
    create_role(iam, "atc-node")
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=json.dumps(assume_doc(S3)))
    calls = watch(iam)

    record = iam_ops.ensure_attached(iam, CM, role_name="atc-node", policy_arn=ASSUME_POLICY_ARN, dry_run=True)

    assert (record["action"], record["applied"]) == ("attached", False)
    assert calls.writes == []
    assert iam.list_attached_role_policies(RoleName="atc-node")["AttachedPolicies"] == []


# --- write_trust_policy ----------------------------------------------------------------

PARTNER_ID = "partner-7Qm2x9Lk"
CLUSTER_ID = "Zq8fW2nL4xV7cR1tY6uB3mK9pD5sH0gJ"


def partner_trust() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {
                "Sid": "PartnerAnalytics",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::333333333333:role/partner-analytics"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": PARTNER_ID}},
            },
        ],
    }


def with_grant(trust: dict[str, Any]) -> dict[str, Any]:
    grant = {
        "Sid": "AtcXaccount111111111111atcnode",
        "Effect": "Allow",
        "Principal": {"AWS": NODE_ARN},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": CLUSTER_ID}},
    }
    return {**trust, "Statement": [*trust["Statement"], grant]}


def stored_trust(iam: Any) -> dict[str, Any]:
    return iam.get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]


def test_trust_policy_is_written_when_different():
    iam = iam_in(S3)
    before = partner_trust()
    create_role(iam, "atc-s3-access-keys", before)
    after = with_grant(before)
    calls = watch(iam)

    record = iam_ops.write_trust_policy(
        iam, S3, role_name="atc-s3-access-keys", before=before, after=after, fingerprints=FPS
    )

    assert record["action"] == "updated"
    assert calls.writes == ["UpdateAssumeRolePolicy"]
    assert stored_trust(iam) == after


def test_trust_policy_equal_in_meaning_is_not_written():
    iam = iam_in(S3)
    before = with_grant(partner_trust())
    create_role(iam, "atc-s3-access-keys", before)
    # Same grants: statements reordered, single values as lists, operator case folded.
    after = json.loads(json.dumps(before))
    after["Statement"].reverse()
    after["Statement"][0]["Action"] = ["sts:AssumeRole"]
    after["Statement"][0]["Condition"] = {"stringequals": {"sts:externalid": [CLUSTER_ID]}}
    calls = watch(iam)

    record = iam_ops.write_trust_policy(
        iam, S3, role_name="atc-s3-access-keys", before=before, after=after, fingerprints=FPS
    )

    assert record["action"] == "unchanged"
    assert calls.operations == []
    assert stored_trust(iam) == before


def test_trust_record_carries_fingerprints_never_external_ids():
    iam = iam_in(S3)
    before = partner_trust()
    create_role(iam, "atc-s3-access-keys", before)
    after = with_grant(before)

    record = iam_ops.write_trust_policy(
        iam, S3, role_name="atc-s3-access-keys", before=before, after=after, fingerprints=FPS
    )

    text = json.dumps(record)
    assert PARTNER_ID not in text
    assert CLUSTER_ID not in text
    conditions = [s.get("Condition") for s in record["after"]["Statement"]]
    assert conditions[1:] == [
        {"StringEquals": {"sts:ExternalId": FPS.of(PARTNER_ID)}},
        {"StringEquals": {"sts:ExternalId": FPS.of(CLUSTER_ID)}},
    ]
    assert record["before"]["Statement"][1]["Condition"] == {"StringEquals": {"sts:ExternalId": FPS.of(PARTNER_ID)}}
    assert FPS.of(PARTNER_ID) != FPS.of(CLUSTER_ID)
    # The role itself holds the real IDs: only the record is redacted.
    assert stored_trust(iam) == after


def test_trust_policy_dry_run_writes_nothing():
    iam = iam_in(S3)
    before = partner_trust()
    create_role(iam, "atc-s3-access-keys", before)
    calls = watch(iam)

    record = iam_ops.write_trust_policy(
        iam, S3, role_name="atc-s3-access-keys", before=before, after=with_grant(before), fingerprints=FPS, dry_run=True
    )

    assert (record["action"], record["applied"]) == ("updated", False)
    assert calls.writes == []
    assert stored_trust(iam) == before


# --- undo of a retired version, and IAM's transient answers (issue 9 item 4, issue 10 item 2) ---

FIVE_DOCS = [
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": f"S{i}", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
    }
    for i in range(5)
]
NEW_DOC = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "New", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
}


def client_error(code: str, message: str = "") -> Any:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "Call")


class Flaky:
    """Wraps one client method: the first `answers` calls raise those errors, then the real call."""

    def __init__(self, real: Any, *answers: Any) -> None:
        self.real, self.answers, self.calls = real, list(answers), 0

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.answers:
            raise self.answers.pop(0)
        return self.real(**kwargs)


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setenv("ATC_RETRY_BASE_SECONDS", "0")


@pytest.fixture
def five(aws, no_sleep):
    import boto3

    iam = boto3.client("iam", region_name="us-east-1")
    arn = iam.create_policy(PolicyName="p", PolicyDocument=json.dumps(FIVE_DOCS[0]))["Policy"]["Arn"]
    for doc in FIVE_DOCS[1:]:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)
    return iam, arn


def all_documents(iam: Any, arn: str) -> list[str]:
    """Every version's document, canonical JSON, sorted: what must survive a failed step."""
    return sorted(
        json.dumps(
            iam.get_policy_version(PolicyArn=arn, VersionId=v["VersionId"])["PolicyVersion"]["Document"], sort_keys=True
        )
        for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]
    )


def write_new_version(iam: Any, arn: str) -> dict[str, Any]:
    current = iam_ops.get_policy_state(iam, "1", arn, with_versions=True)
    return iam_ops.write_managed_policy(iam, "1", name="p", arn=arn, current=current, desired=NEW_DOC)


def test_a_denied_new_version_puts_the_retired_one_back(five):
    """Delete-then-create at five versions must not lose the retired document on failure."""
    from atc_xaccount.errors import AutomationRoleDenied

    iam, arn = five
    iam.create_policy_version = Flaky(iam.create_policy_version, client_error("AccessDenied", "not authorized"))

    with pytest.raises(AutomationRoleDenied, match="AccessDenied"):
        write_new_version(iam, arn)

    assert all_documents(iam, arn) == sorted(json.dumps(d, sort_keys=True) for d in FIVE_DOCS)
    assert iam_ops.get_policy_state(iam, "1", arn).document == FIVE_DOCS[-1], "the default is unchanged"


def test_a_new_version_throttled_after_the_retirement_puts_the_retired_document_back(five):
    """Throttling is botocore's and the state machine's to retry, not the step's (one layer)."""
    from atc_xaccount.errors import IamThrottled

    iam, arn = five
    iam.create_policy_version = Flaky(iam.create_policy_version, client_error("Throttling", "Rate exceeded"))

    with pytest.raises(IamThrottled):
        write_new_version(iam, arn)

    assert iam.create_policy_version.calls == 2, "the throttled new version, then the retired document back"
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    documents = [iam.get_policy_version(PolicyArn=arn, VersionId=v["VersionId"]) for v in versions]
    assert FIVE_DOCS[0] in [d["PolicyVersion"]["Document"] for d in documents], "nothing lost"


def test_when_the_retired_version_cannot_be_put_back_the_error_carries_its_document(five):
    from atc_xaccount.errors import UndoIncomplete, left_from_cause

    iam, arn = five
    denied = [client_error("AccessDenied", "not authorized") for _ in range(2)]
    iam.create_policy_version = Flaky(iam.create_policy_version, *denied)

    with pytest.raises(UndoIncomplete) as raised:
        write_new_version(iam, arn)

    cause = json.dumps({"errorType": "UndoIncomplete", "errorMessage": str(raised.value)})
    [left] = left_from_cause(cause)
    assert left["change"] == "retiredVersion" and left["policyArn"] == arn
    assert left["versionId"] == "v1" and left["document"] == FIVE_DOCS[0]
    assert "AccessDenied" in str(raised.value)


def test_attach_right_after_create_retries_no_such_entity(aws, no_sleep):
    import boto3

    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(RoleName="atc-node", AssumeRolePolicyDocument=json.dumps(FIVE_DOCS[0]))
    arn = iam.create_policy(PolicyName="p", PolicyDocument=json.dumps(FIVE_DOCS[0]))["Policy"]["Arn"]
    iam.attach_role_policy = Flaky(iam.attach_role_policy, *[client_error("NoSuchEntity", "not attachable")] * 2)

    iam_ops.attach(iam, "1", role_name="atc-node", policy_arn=arn, needed=True, just_created=True)

    assert iam.attach_role_policy.calls == 3
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="atc-node")["AttachedPolicies"]] == [arn]


def test_attach_of_a_policy_not_just_created_fails_at_once_on_no_such_entity(aws, no_sleep):
    import boto3

    from atc_xaccount.errors import AwsOperationFailed

    iam = boto3.client("iam", region_name="us-east-1")
    iam.attach_role_policy = Flaky(iam.attach_role_policy, client_error("NoSuchEntity", "no role"))

    with pytest.raises(AwsOperationFailed, match="NoSuchEntity"):
        iam_ops.attach(iam, "1", role_name="atc-node", policy_arn="arn:aws:iam::1:policy/p", needed=True)
    assert iam.attach_role_policy.calls == 1


def test_delete_right_after_detach_retries_delete_conflict(aws, no_sleep):
    import boto3

    iam = boto3.client("iam", region_name="us-east-1")
    arn = iam.create_policy(PolicyName="p", PolicyDocument=json.dumps(FIVE_DOCS[0]))["Policy"]["Arn"]
    iam.delete_policy = Flaky(iam.delete_policy, client_error("DeleteConflict", "attached"))

    iam_ops.delete_managed_policy(iam, "1", arn, just_detached=True)

    assert iam.delete_policy.calls == 2
    assert iam.list_policies(Scope="Local")["Policies"] == []


def test_trust_write_naming_a_new_principal_retries_invalid_principal(aws, no_sleep):
    import boto3

    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(partner_trust()))
    invalid = client_error("MalformedPolicyDocument", "Invalid principal in policy")
    iam.update_assume_role_policy = Flaky(iam.update_assume_role_policy, invalid, invalid)

    iam_ops.write_trust_policy(
        iam, "1", role_name="r", before=partner_trust(), after=with_grant(partner_trust()), fingerprints=FPS
    )

    assert iam.update_assume_role_policy.calls == 3
    assert iam.get_role(RoleName="r")["Role"]["AssumeRolePolicyDocument"] == with_grant(partner_trust())
