"""`atc-xaccount local run` with several event files and `--faults`, and `local audit`."""

from __future__ import annotations

import copy
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.main import main
from tests.lifecycle.conftest import ROOT, admits, external_id, granted_ids, registration, trust_of

SAMPLE_WORLD = ROOT / "events" / "sample-world.json"
CLUSTERS = ("cli-cluster-a", "cli-cluster-b")
ATTACH_FAULT = {"step": "EnsureAssumePolicyFunction", "call": "iam:AttachRolePolicy", "kind": "fail"}


def cli(*argv: str | Path) -> tuple[int, str]:
    out = StringIO()
    code = main([str(a) for a in argv], out=out)
    return code, out.getvalue()


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def several(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    """Two registration files at once; the first AttachRolePolicy of the run fails."""
    folder = tmp_path_factory.mktemp("events")
    files = [write_json(folder / f"{c}.json", registration(c)) for c in CLUSTERS]
    code, text = cli(
        "local", "run", *files, "--world", SAMPLE_WORLD, "--json",
        "--faults", "iam:AttachRolePolicy=fail:1:1", "--seed", "1",
    )  # fmt: skip
    return code, json.loads(text)


def by_status(report: dict[str, Any], status: str) -> dict[str, Any]:
    return next(e for e in report["executions"] if e["status"] == status)


def test_several_files_run_at_once_and_each_is_reported(several):
    code, report = several

    assert code == 1, "one execution FAILED"
    assert report["status"] == "FAILED"
    assert sorted(Path(e["input"]).stem for e in report["executions"]) == sorted(CLUSTERS)
    assert sorted(e["status"] for e in report["executions"]) == ["FAILED", "SUCCEEDED"]
    assert report["faults"] == [ATTACH_FAULT], "the fault was injected once, as limited"


def test_the_faulted_execution_fails_with_its_cause_and_the_other_is_granted(several, sample_world):
    _, report = several
    failed, succeeded = by_status(report, "FAILED"), by_status(report, "SUCCEEDED")
    world = report["world"]
    winner = succeeded["output"]["request"]["clusterId"]

    assert failed["error"] == "AwsOperationFailed"
    assert "iam:AttachRolePolicy" in failed["cause"]
    assert [e["detail-type"] for e in failed["events"]] == ["Cluster S3 Access Failed"]
    assert [e["detail-type"] for e in succeeded["events"]] == ["Cluster S3 Access Ready"]
    assert succeeded["proof"]["ok"] is True
    assert granted_ids(world) == [external_id(world, winner)], "only the successful cluster is granted"
    assert trust_of(world)["Statement"][:2] == trust_of(sample_world)["Statement"]


def test_local_audit_reports_a_removed_grant(several, tmp_path):
    _, report = several
    world = copy.deepcopy(report["world"])
    winner = by_status(report, "SUCCEEDED")["output"]["request"]["clusterId"]
    trust_of(world)["Statement"] = trust_of(world)["Statement"][:2]
    assert not admits(world, external_id(world, winner))

    code, text = cli("local", "audit", "--world", write_json(tmp_path / "world.json", world), "--json")
    audit = json.loads(text)

    assert code == 4, "exit 4: the audit ran and found drift (scripts can tell)"
    assert audit["status"] == "SUCCEEDED"
    [cluster] = audit["output"]["clusters"]
    assert cluster["clusterId"] == winner
    assert [d["kind"] for d in cluster["drift"]] == ["TrustGrantMissing"]
    assert [e["detail-type"] for e in audit["events"]] == ["Cluster S3 Access Drift Detected"]


def test_a_malformed_fault_spec_is_a_usage_error(tmp_path, capsys):
    event = write_json(tmp_path / "event.json", registration(CLUSTERS[0]))

    code, _ = cli("local", "run", event, "--json", "--faults", "iam:AttachRolePolicy=explode")

    assert code == 2
    assert "iam:AttachRolePolicy=explode" in capsys.readouterr().err
