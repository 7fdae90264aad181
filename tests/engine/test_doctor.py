"""`local doctor` on the emulator: one run per exit code, and the KMS cause found, fixed, proven."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.main import main
from atc_xaccount_cli.local.run import run_event

ROOT = Path(__file__).resolve().parents[2]
S3 = "222222222222"
BUCKET = "atc-demo-transfers"
EVENT = json.loads((ROOT / "events" / "cluster-registered.json").read_text())


def world(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


@pytest.fixture(scope="module")
def onboarded_kms() -> Any:
    """The KMS sample world after `local run`: onboarded, proof run, world with secret and registry."""
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


def test_kms_without_grant_fails_the_proof_and_the_doctor_names_the_key_and_fix(tmp_path, onboarded_kms):
    assert onboarded_kms.result.status == "SUCCEEDED"
    proof = onboarded_kms.proof
    assert proof is not None and not proof.ok
    failed = [s.claim for s in proof.steps if not s.ok]
    assert failed == [f"atc-s3-access-keys may use the default encryption key of {BUCKET} (broken)"]

    code, text = doctor(tmp_path, onboarded_kms.world, "demo-cluster-1")
    assert code == 1
    first = text.splitlines()[:3]
    assert first[0] == f"BROKEN  atc-s3-access-keys may use the default encryption key of {BUCKET}"
    assert first[2].startswith(
        "  fix  add kms:GenerateDataKey, kms:Decrypt on key arn:aws:kms:us-east-1:222222222222:key/"
    )
    assert first[2].endswith(" to atc-s3-policy")


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


def test_only_undecidable_left_exits_3(tmp_path, onboarded_kms):
    state = copy.deepcopy(onboarded_kms.world)
    s3 = state["accounts"][S3]
    del s3["bucketEncryption"]
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
