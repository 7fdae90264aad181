"""`local doctor` on the emulator: one run per exit code, and the KMS cause found, fixed, proven."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.local.run import run_event
from atc_xaccount_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
S3 = "222222222222"
BUCKET = "atc-demo-transfers"
EVENT = json.loads((ROOT / "events" / "cluster-registered.json").read_text())


def world(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


@pytest.fixture(scope="module")
def refused_kms() -> Any:
    """`local run` on the KMS sample world: Preflight judges the KMS link and refuses."""
    return run_event(ROOT, EVENT, world("sample-world-kms.json"))


def doctor(tmp_path: Path, state: dict[str, Any], *args: str) -> tuple[int, Any]:
    path = tmp_path / "world.json"
    path.write_text(json.dumps(state))
    out = io.StringIO()
    code = main(["local", "doctor", *args, "--world", str(path)], out=out)
    text = out.getvalue()
    return code, json.loads(text) if "--json" in args and text.strip() else text


def test_the_sample_world_is_ok_and_agrees_with_the_proof(tmp_path):
    report = run_event(ROOT, EVENT, world("sample-world.json"))
    assert report.proof is not None and report.proof.ok, report.proof

    code, body = doctor(tmp_path, report.world, "demo-cluster-1", "--json")
    assert code == 0, body
    assert {link["verdict"] for link in body["links"]} == {"ok"}
    assert body["externalId"] is None, "the external ID is printed only with --reveal"


def test_kms_without_grant_is_refused_before_any_write_and_the_doctor_names_the_key_and_fix(tmp_path, refused_kms):
    # Onboarding judges the same link with the same evaluation, before writing anything.
    assert refused_kms.result.status == "FAILED"
    assert refused_kms.result.error == "VerificationFailed"
    assert f"kms:{BUCKET}" in refused_kms.cause_message and "fix: add kms:GenerateDataKey" in refused_kms.cause_message
    assert refused_kms.calls["writes"] == 0

    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))
    code, body = doctor(tmp_path, refused_kms.world, "--event", str(event), "--json")
    assert code == 1
    broken = {x["link"]: x for x in body["links"] if x["verdict"] == "broken"}
    # Not onboarded (nothing was written): the node role may not assume the access role
    # nor does the trust admit it yet; the key is the link onboarding cannot fix.
    assert set(broken) == {"assume", "trust", f"kms:{BUCKET}"}, broken
    fix = broken[f"kms:{BUCKET}"]["fix"]
    assert fix.startswith("add kms:GenerateDataKey, kms:Decrypt on key arn:aws:kms:us-east-1:222222222222:key/")
    assert fix.endswith(" to atc-s3-policy")


def test_after_the_fix_the_proof_succeeds_and_the_doctor_agrees(tmp_path):
    fixed = world("sample-world-kms.json")
    policy = fixed["accounts"][S3]["policies"]["atc-s3-policy"]["document"]
    policy["Statement"].append(
        {
            "Sid": "BucketKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": f"arn:aws:kms:us-east-1:{S3}:key/*",
        }
    )
    report = run_event(ROOT, EVENT, fixed)
    assert report.proof is not None and report.proof.ok, [s for s in report.proof.steps if not s.ok]

    code, body = doctor(tmp_path, report.world, "demo-cluster-1", "--json")
    assert code == 0, body["firstBroken"]
    assert body["links"][4]["link"] == f"kms:{BUCKET}" and body["links"][4]["verdict"] == "ok"


def test_only_undecidable_left_exits_3(tmp_path, onboarded):
    state = copy.deepcopy(onboarded)
    s3 = state["accounts"][S3]
    s3.pop("bucketEncryption", None)
    s3["bucketPolicies"] = {
        BUCKET: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OnlyThroughVpce",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                    "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
                }
            ],
        }
    }
    code, body = doctor(tmp_path, state, "demo-cluster-1", "--json")
    assert code == 3, body
    assert body["firstBroken"] is None
    assert [(x["link"], x["verdict"]) for x in body["links"] if x["verdict"] != "ok"] == [
        (f"bucket-policy:{BUCKET}", "undecidable")
    ]


def test_an_unregistered_cluster_needs_its_event_and_reveal_prints_the_id(tmp_path):
    sample = world("sample-world.json")
    assert doctor(tmp_path, sample, "demo-cluster-1", "--json")[0] == 2

    event = copy.deepcopy(EVENT)
    event["detail"]["externalId"] = "not-granted-yet-123"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, body = doctor(tmp_path, sample, "--event", str(path), "--reveal", "--json")
    assert code == 1
    assert body["registered"] is False and body["externalId"] == "not-granted-yet-123"
    assert body["firstBroken"]["link"] == "assume"
    assert [x["link"] for x in body["links"] if x["verdict"] == "broken"] == ["assume", "trust"]


# --- each broken world: the right link first, with its fix, exit 1 ------------------------------

CM = "111111111111"
OBJECTS = [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]


@pytest.fixture(scope="module")
def onboarded() -> dict[str, Any]:
    report = run_event(ROOT, EVENT, world("sample-world.json"), prove=False)
    assert report.result.status == "SUCCEEDED"
    return report.world


def _bucket_policy(statement: dict[str, Any]) -> Any:
    def change(state: dict[str, Any]) -> None:
        state["accounts"][S3]["bucketPolicies"] = {BUCKET: {"Version": "2012-10-17", "Statement": [statement]}}

    return change


def _org_deny(state: dict[str, Any]) -> None:
    _bucket_policy(
        {"Sid": "DenyOutsideOrg", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": OBJECTS,
         "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-partner0001"}}}
    )(state)  # fmt: skip
    state["accounts"][S3]["organizationId"] = "o-ours0000001"


def _node_boundary(state: dict[str, Any]) -> None:
    cm = state["accounts"][CM]
    cm["policies"]["ec2-only"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}, "versions": 1}  # fmt: skip
    cm["roles"]["atc-node"]["boundary"] = f"arn:aws:iam::{CM}:policy/ec2-only"


def _inline_deny(state: dict[str, Any]) -> None:
    deny = {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
    state["accounts"][S3]["roles"]["atc-s3-access-keys"]["inline"] = {
        "guardrails": {"Version": "2012-10-17", "Statement": [deny]}
    }


def _foreign_trust_deny(state: dict[str, Any]) -> None:
    state["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"]["Statement"].append(
        {"Sid": "OnlyOurAccount", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
         "Condition": {"StringNotEquals": {"aws:PrincipalAccount": S3}}}
    )  # fmt: skip


def _stale_principal(state: dict[str, Any]) -> None:
    for statement in state["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"]["Statement"]:
        if statement.get("Sid", "").startswith("AtcXaccount"):
            statement["Principal"] = {"AWS": "AROAQDELETEDNODE00001"}


def _home_only(state: dict[str, Any]) -> None:
    objects = state["accounts"][S3]["policies"]["atc-s3-policy"]["document"]["Statement"][1]
    objects["Resource"] = f"arn:aws:s3:::{BUCKET}/home/*"


def _key_admins_only(state: dict[str, Any], *, doctor_may_read: bool = True) -> None:
    """A key policy without the root statement: only its admins (and, if asked, the automation role's reads)."""
    s3 = state["accounts"][S3]
    admins = {"Sid": "KeyAdmins", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{S3}:role/key-admin"},
              "Action": "kms:*", "Resource": "*"}  # fmt: skip
    doctor = {"Sid": "AtcXaccountDoctor", "Effect": "Allow",
              "Principal": {"AWS": f"arn:aws:iam::{S3}:role/atc-xaccount-automation"},
              "Action": ["kms:DescribeKey", "kms:GetKeyPolicy"], "Resource": "*"}  # fmt: skip
    statements = [admins, doctor] if doctor_may_read else [admins]
    s3["kmsKeys"] = {"locked": {"policy": {"Version": "2012-10-17", "Statement": statements}}}
    s3["bucketEncryption"] = {BUCKET: {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/locked"}}


def _long_sessions(state: dict[str, Any]) -> None:
    state["accounts"][S3]["roles"]["atc-s3-access-keys"]["maxSessionDuration"] = 43200


def _not_principal_deny(state: dict[str, Any]) -> None:
    """The access role and its account are listed; the session ARN Cluster Manager signs with is not."""
    spared = [f"arn:aws:iam::{S3}:role/atc-s3-access-keys", f"arn:aws:iam::{S3}:root"]
    _bucket_policy(
        {"Sid": "OnlyTheAccessRole", "Effect": "Deny", "NotPrincipal": {"AWS": spared}, "Action": "s3:*",
         "Resource": OBJECTS}
    )(state)  # fmt: skip


_TLS = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": OBJECTS,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}  # fmt: skip

BROKEN_WORLDS = [
    ("bucket policy Deny on aws:PrincipalOrgID", _org_deny, [], f"bucket-policy:{BUCKET}", "is in o-ours0000001"),
    ("nodes on HTTP, bucket policy requires TLS", _bucket_policy(_TLS), ["--transport", "http"],
     f"bucket-policy:{BUCKET}", "statement DenyInsecureTransport denies"),
    ("key policy not delegating to IAM", _key_admins_only, [], f"kms:{BUCKET}", f"arn:aws:iam::{S3}:root kms:*"),
    ("permissions boundary on atc-node", _node_boundary, [], "assume",
     f"let the permissions boundary arn:aws:iam::{CM}:policy/ec2-only of atc-node allow sts:AssumeRole"),
    ("inline Deny on the access role", _inline_deny, [], f"s3:{BUCKET}", "Deny guardrails:NoDeletes"),
    ("foreign Deny in the trust policy", _foreign_trust_deny, [], "trust", "Deny trust:OnlyOurAccount"),
    ("stale AROA principal", _stale_principal, [], "trust", "replaces the stale AROAQDELETEDNODE00001 grant"),
    ("the path's objects not granted", _home_only, ["--path", "/projects"], f"s3:{BUCKET}",
     f"on arn:aws:s3:::{BUCKET}/projects/* to atc-s3-policy"),
    ("a 7,200 s session: role chaining caps it at 3,600 s", _long_sessions, ["--session-seconds", "7200"],
     "session", "at most 3600 s"),
    ("bucket policy NotPrincipal sparing the role, not its session", _not_principal_deny, [],
     f"bucket-policy:{BUCKET}", f"ArnNotEquals aws:PrincipalArn arn:aws:iam::{S3}:role/atc-s3-access-keys"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "options", "link", "fix"), BROKEN_WORLDS, ids=[c[0] for c in BROKEN_WORLDS])
def test_each_broken_world_names_its_link_first(tmp_path, onboarded, case, change, options, link, fix):
    state = copy.deepcopy(onboarded)
    change(state)
    code, body = doctor(tmp_path, state, "demo-cluster-1", *options, "--json")

    assert code == 1, body
    assert body["firstBroken"]["link"] == link, body["firstBroken"]
    assert fix in body["firstBroken"]["fix"], body["firstBroken"]["fix"]


def test_a_key_the_automation_role_may_not_read_is_undecidable_not_ok(tmp_path, onboarded):
    """As in AWS: without the root statement the key policy refuses the doctor's reads as well."""
    state = copy.deepcopy(onboarded)
    _key_admins_only(state, doctor_may_read=False)
    code, body = doctor(tmp_path, state, "demo-cluster-1", "--json")

    assert code == 3, body
    kms = next(x for x in body["links"] if x["link"] == f"kms:{BUCKET}")
    assert kms["verdict"] == "undecidable"
    assert "the key policy does not allow it" in kms["detail"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "bad"], "--org expects ACCOUNT=o-ID or ACCOUNT=none"),
        (["--session-seconds", "60"], "at least 900 seconds"),
        ([], "doctor needs a CLUSTER or --event FILE"),
    ],
)
def test_bad_doctor_options_are_usage_errors(capsys, args, message):
    cluster = [] if not args else ["demo-cluster-1"]
    assert main(["local", "doctor", *cluster, *args]) == 2
    assert message in capsys.readouterr().err


def test_an_org_on_the_command_line_overrides_the_worlds(tmp_path, onboarded):
    state = copy.deepcopy(onboarded)
    _org_deny(state)
    code, body = doctor(tmp_path, state, "demo-cluster-1", "--org", f"{S3}=o-partner0001", "--json")
    assert code == 0, body["firstBroken"]
