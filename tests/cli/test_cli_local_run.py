"""`atc-xaccount local run` with the real sample files: exit codes, the JSON contract, the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import (
    CM,
    EVENTS,
    INVALID_EVENT,
    ROOT,
    S3,
    SAMPLE_EVENT,
    SAMPLE_WORLD,
    cli,
    cli_json,
    iam_writes,
)

ACCESS_ARN = f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
SUCCESS_PATH = [
    "Validate",
    "Preflight",
    "Route",
    "EnsureAssumePolicy",
    "MergeTrust",
    "Verify",
    "PublishReady",
    "Onboarded",
]
EC2_TRUST = json.loads(SAMPLE_WORLD.read_text())["accounts"][CM]["roles"]["atc-node"]["trust"]


@pytest.fixture(scope="module")
def sample_run() -> tuple[int, dict[str, Any]]:
    return cli_json(SAMPLE_EVENT, "--world", SAMPLE_WORLD)


@pytest.fixture(scope="module")
def rerun(sample_run, tmp_path_factory) -> tuple[int, dict[str, Any]]:
    """The first run's resulting world, fed back in: the same event must change nothing."""
    world_file = tmp_path_factory.mktemp("rerun") / "world.json"
    world_file.write_text(json.dumps(sample_run[1]["world"]))
    return cli_json(SAMPLE_EVENT, "--world", world_file)


@pytest.fixture(scope="module")
def invalid_run() -> tuple[int, dict[str, Any]]:
    """Run in a shell that still exports `local serve`'s endpoint (gone): the emulator is in-process."""
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    try:
        return cli_json(INVALID_EVENT, "--world", SAMPLE_WORLD)
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved


#: PublishReady's first putEvents fails: the ASL's own retrier waits (up to 1 s) and succeeds.
PUBLISH_FAULT = "PublishReady/events:PutEvents=fail:1:1"


@pytest.fixture(scope="module")
def human_report() -> tuple[int, str]:
    return cli("local", "run", SAMPLE_EVENT, "--world", SAMPLE_WORLD, "--faults", PUBLISH_FAULT)


# --- --json ----------------------------------------------------------------------------


def test_sample_run_succeeds_with_the_documented_json_shape(sample_run):
    code, report = sample_run

    assert code == 0
    assert {"status", "error", "cause", "output", "world", "calls"} <= set(report)
    assert set(report["calls"]) == {"total", "writes", "by_operation"}
    assert (report["status"], report["error"], report["cause"]) == ("SUCCEEDED", None, None)
    assert report["calls"]["total"] == sum(report["calls"]["by_operation"].values())


def test_sample_run_makes_at_most_the_three_iam_changes(sample_run):
    _, report = sample_run

    writes = iam_writes(report)
    assert sum(writes.values()) <= 3
    assert set(writes) <= {
        "iam:CreatePolicy",
        "iam:CreatePolicyVersion",
        "iam:AttachRolePolicy",
        "iam:UpdateAssumeRolePolicy",
    }
    node = report["world"]["accounts"][CM]["roles"]["atc-node"]
    assert node["attached"] == [f"arn:aws:iam::{CM}:policy/atc-s3-assume-role"]


def test_feeding_the_resulting_world_back_writes_nothing(rerun):
    code, report = rerun

    assert code == 0
    assert report["status"] == "SUCCEEDED"
    assert iam_writes(report) == {}
    assert report["calls"]["writes"] == 0
    assert report["calls"]["total"] > 0, "the steps still read both accounts"


def test_resulting_world_is_stable_when_fed_back(sample_run, rerun):
    assert rerun[1]["world"] == sample_run[1]["world"]


def test_invalid_event_fails_naming_the_field_before_any_write(invalid_run):
    code, report = invalid_run

    assert code == 1
    assert report["status"] == "FAILED"
    assert report["error"] == "InvalidEvent"
    assert "detail.s3AccountId" in report["cause"]
    assert report["calls"]["writes"] == 0


# --- the human report ------------------------------------------------------------------


def test_human_report_shows_states_result_and_what_to_type(human_report, sample_run):
    code, text = human_report
    executed = [s["name"] for s in sample_run[1]["states"]]

    assert code == 0
    assert set(SUCCESS_PATH) <= set(executed)
    for state in executed:
        assert re.search(rf"^\s+ok\s+{state}\b", text, re.MULTILINE), state
    assert "SUCCEEDED" in text
    assert re.search(rf"Role ARN\s+{re.escape(ACCESS_ARN)}$", text, re.MULTILINE)
    external_id = re.search(r"External ID\s+(\S+)$", text, re.MULTILINE)
    assert external_id and re.fullmatch(r"[A-Za-z0-9]{32,}", external_id.group(1))


def test_human_report_says_while_a_state_waits_for_its_retry_and_that_it_was_retried(human_report):
    _, text = human_report

    waiting = re.search(r"^  \.\.\.\s+PublishReady retrying \(1/\d+\) in up to 1 s after \S+$", text, re.MULTILINE)
    assert waiting, text
    done = re.search(r"^  ok\s+PublishReady\s+[\d.]+ ms  retried ×1$", text, re.MULTILINE)  # noqa: RUF001
    assert done, "a retried-then-successful state is ok, not FAIL"
    assert text.index(waiting.group(0)) < text.index(done.group(0))


def test_human_report_proves_access_line_by_line(human_report):
    _, text = human_report

    proof = text.split("Proof of access\n", 1)[1].splitlines()
    claims = [line for line in proof if re.match(r"^  (ok|FAIL)\b", line)]
    assert len(claims) >= 5
    assert all(line.startswith("  ok ") for line in claims), claims
    assert "access works end to end" in text
    assert "(ok)" not in text, "a proof line that is ok does not say so twice"


# --- usage errors: exit 2, a message naming the problem, no traceback ------------------


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    code, out = cli("local", "run", *argv)
    err = capsys.readouterr().err
    assert code == 2, (out, err)
    assert "Traceback" not in err
    return err


def test_missing_event_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"

    err = usage_error(capsys, missing, "--json")

    assert str(missing) in err and "no such file" in err


def test_event_file_that_is_not_json(tmp_path, capsys):
    event = tmp_path / "event.json"
    event.write_text("{'detail-type': 'Cluster Registered'}")

    err = usage_error(capsys, event, "--json")

    assert str(event) in err and "not valid JSON" in err


def world_file(tmp_path: Path, world: Any) -> Path:
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    return path


@pytest.mark.parametrize(
    ("world", "names"),
    [
        pytest.param({"accounts": {"12": {}}}, ["accounts.12", "12 digits"], id="short-account-id"),
        pytest.param(
            {"accounts": {CM: {"roles": {"atc-node": {"trust": EC2_TRUST, "attached": [], "policy": []}}}}},
            [f"accounts.{CM}.roles.atc-node", "unknown field", "policy"],
            id="unknown-role-field",
        ),
        pytest.param(
            {"accounts": {CM: {"policies": {"p": {"document": EC2_TRUST, "versions": 9}}}}},
            [f"accounts.{CM}.policies.p.versions", "1 to 5"],
            id="versions-9",
        ),
        pytest.param({"account": {}}, ['{"accounts"'], id="wrong-top-level-key"),
        pytest.param(
            {"accounts": {S3: {"quotas": {"AssumeRolePolicySizeQuota": 400}}}},
            [f"accounts.{S3}.quotas.AssumeRolePolicySizeQuota", "400", "2,048", "only be raised"],
            id="trust-quota-below-iam-default",
        ),
    ],
)
def test_malformed_world_file_names_the_field(tmp_path, capsys, world, names):
    err = usage_error(capsys, SAMPLE_EVENT, "--world", world_file(tmp_path, world), "--json")

    assert "world file" in err
    for name in names:
        assert name in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["{bad"], id="event-not-json"),
        pytest.param([SAMPLE_EVENT, "--world", "{bad"], id="world-not-json"),
        pytest.param([SAMPLE_EVENT, "--param", "NoSuchParameter=1"], id="unknown-parameter"),
    ],
)
def test_in_human_mode_a_bad_input_is_its_error_alone(tmp_path, capsys, argv):
    """No banner, no "Execution" heading above the error: nothing ran."""
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, out = cli("local", "run", *[bad if a == "{bad" else a for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert out == "" and err.startswith("atc-xaccount: "), (out, err)


def test_missing_and_non_json_world_files_are_named(tmp_path, capsys):
    missing = tmp_path / "missing-world.json"
    err = usage_error(capsys, SAMPLE_EVENT, "--world", missing, "--json")
    assert str(missing) in err and "no such file" in err

    broken = tmp_path / "broken-world.json"
    broken.write_text('{"accounts": {')
    err = usage_error(capsys, SAMPLE_EVENT, "--world", broken, "--json")
    assert str(broken) in err and "not valid JSON" in err


def test_world_with_roles_as_a_list_is_a_usage_error(tmp_path, capsys):
    err = usage_error(
        capsys, SAMPLE_EVENT, "--world", world_file(tmp_path, {"accounts": {CM: {"roles": ["atc-node"]}}})
    )
    assert f"accounts.{CM}.roles" in err


def test_world_attaching_an_undefined_policy_is_a_usage_error(tmp_path, capsys):
    world = {
        "accounts": {
            CM: {
                "roles": {"atc-node": {"trust": EC2_TRUST, "attached": [f"arn:aws:iam::{CM}:policy/not-in-the-world"]}}
            }
        }
    }
    err = usage_error(capsys, SAMPLE_EVENT, "--world", world_file(tmp_path, world), "--json")
    assert "not-in-the-world" in err


@pytest.mark.parametrize(
    "change",
    [{"detail-type": "Cluster Renamed"}, {"source": "someone.else"}],
    ids=["unknown-detail-type", "other-source"],
)
def test_event_no_rule_would_deliver_is_refused(tmp_path, capsys, change):
    event = {**json.loads(SAMPLE_EVENT.read_text()), **change}
    path = tmp_path / "undeliverable.json"
    path.write_text(json.dumps(event))

    err = usage_error(capsys, path, "--world", SAMPLE_WORLD, "--json")

    assert "would deliver" in err
    assert "Cluster Registered" in err, "the message shows the patterns the event missed"


# --- the installed console script ------------------------------------------------------


def test_installed_console_script_runs_a_manual_execution_from_the_detail():
    script = Path(sys.executable).parent / "atc-xaccount"
    completed = subprocess.run(
        [
            str(script),
            "local",
            "run",
            str(EVENTS / "cluster-registered-detail.json"),
            "--world",
            str(SAMPLE_WORLD),
            "--json",
            "--no-proof",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["status"] == "SUCCEEDED"
    assert report["output"]["verify"]["roleArn"] == ACCESS_ARN
