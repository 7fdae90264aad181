"""Capture the golden fixtures (tests/cli/golden/*.json): what real commands print with `--json`;
and (`functions`) each Lambda step's input in sample runs (events/functions/<Function>.json).

    .venv/bin/python -m tests.cli.capture_golden [NAME...]
    ATC_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/cli/test_golden.py   # then re-render the .txt
    .venv/bin/python -m tests.cli.capture_golden functions

Local results come from the emulator, operator results from `local serve` (the same
server the README's session uses). Run after a deliberate change of a workflow's output.
"""

from __future__ import annotations

import copy
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from atc_xaccount_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EVENTS = ROOT / "events"
CM, S3 = "111111111111", "222222222222"


def run(*argv: Any) -> tuple[int, Any]:
    out = io.StringIO()
    code = main([str(a) for a in argv] + ["--json"], out=out)
    return code, json.loads(out.getvalue())


def event_for(cluster: str) -> Path:
    event = json.loads((EVENTS / "cluster-registered.json").read_text())
    event["detail"]["clusterId"], event["id"] = cluster, f"event-{cluster}"
    path = Path(f"{cluster}.json")
    path.write_text(json.dumps(event))
    return path


class Capture:
    def __init__(self, names: list[str], *, save: bool = True) -> None:
        self.names = set(names)
        self.saving = save

    def wanted(self, name: str) -> bool:
        return not self.names or name in self.names

    def save(self, name: str, result: tuple[int, Any]) -> None:
        code, body = result
        if not self.saving:
            return
        (GOLDEN / f"{name}.json").write_text(json.dumps({"exit": code, "body": body}, indent=1) + "\n")
        print(name, code)

    def local(self) -> None:
        code, first = run("local", "run", EVENTS / "cluster-registered.json", "--world", EVENTS / "sample-world.json")
        if self.wanted("local-onboarded"):
            self.save("local-onboarded", (code, first))
        Path("after.json").write_text(json.dumps(first["world"]))
        if self.wanted("local-revoked"):
            self.save(
                "local-revoked", run("local", "run", EVENTS / "cluster-deregistered.json", "--world", "after.json")
            )
        if self.wanted("local-revoked-nothing"):
            deregistration = EVENTS / "cluster-deregistered.json"
            self.save(
                "local-revoked-nothing", run("local", "run", deregistration, "--world", EVENTS / "sample-world.json")
            )
        invalid = EVENTS / "cluster-registered-invalid.json"
        if self.wanted("local-failed"):
            self.save("local-failed", run("local", "run", invalid, "--world", EVENTS / "sample-world.json"))
        if self.wanted("local-compensated"):
            fault = "iam:UpdateAssumeRolePolicy=fail"
            registered = EVENTS / "cluster-registered.json"
            self.save(
                "local-compensated",
                run("local", "run", registered, "--world", EVENTS / "sample-world.json", "--faults", fault),
            )
        if self.wanted("local-bulk"):
            bulk = EVENTS / "bulk-registrations.csv"
            self.save("local-bulk", run("local", "run", "--from-file", bulk, "--world", EVENTS / "sample-world.json"))
        if self.wanted("local-audit"):
            drifted = copy.deepcopy(first["world"])
            trust = drifted["accounts"][S3]["roles"]["atc-s3-access-keys"]["trust"]
            trust["Statement"] = trust["Statement"][:2]
            Path("drifted.json").write_text(json.dumps(drifted))
            self.save("local-audit", run("local", "audit", "--world", "drifted.json"))
        if self.wanted("local-many"):
            files = [event_for("golden-a"), event_for("golden-b")]
            self.save("local-many", run("local", "run", *files, "--world", EVENTS / "sample-world.json", "--no-proof"))
        if self.wanted("doctor-broken"):
            kms = json.loads((EVENTS / "sample-world-kms.json").read_text())["accounts"][S3]
            world = copy.deepcopy(first["world"])
            world["accounts"][S3].update({k: kms[k] for k in ("kmsKeys", "bucketEncryption")})
            Path("kms-after.json").write_text(json.dumps(world))
            self.save("doctor-broken", run("local", "doctor", "demo-cluster-1", "--world", "kms-after.json"))

    def operator(self) -> None:
        from atc_xaccount_cli.local.serve import serving

        world = json.loads((EVENTS / "sample-world.json").read_text())
        with serving(ROOT, world, port=0) as served:
            os.environ["AWS_ENDPOINT_URL"] = served.endpoint
            registered = run("register", EVENTS / "cluster-registered.json")
            self.save("aws-register", registered)
            self.save("aws-status", run("status", registered[1]["execution"]))
            self.save("aws-plan", run("plan", event_for("planned-cluster")))
            self.save("aws-plan-refused", run("plan", EVENTS / "cluster-registered-invalid.json"))
            self.save("aws-show", run("show", "demo-cluster-1"))
            self.save("aws-show-unknown", run("show", "nosuch"))
            self.save("aws-snapshot", run("snapshot", CM, S3, "--out", "world.json"))
            self.save("aws-rotation", run("rotate-external-id", "demo-cluster-1"))
            self.save("aws-events-put", run("register", EVENTS / "cluster-registered.json", "--via", "events"))
            self.save("aws-audit", run("audit"))
            self.save("aws-revoked", run("deregister", EVENTS / "cluster-deregistered.json"))


def functions() -> None:
    """The first input each function got in sample runs: onboard, a failure, offboard, audit, bulk,
    an external ID rotation (by hand, and through the Node API)."""
    from atc_xaccount_cli.local.dispatch import Dispatcher

    seen: dict[str, Any] = {}
    original = Dispatcher.invoke

    def recording(self: Dispatcher, function_ref: str, payload: Any, response_headers: dict[str, str]) -> bytes:
        seen.setdefault(function_ref.rsplit(":", 1)[-1], json.loads(payload or "{}"))
        return original(self, function_ref, payload, response_headers)

    Dispatcher.invoke = recording  # type: ignore[method-assign]
    try:
        names = ["local-onboarded", "local-revoked", "local-compensated", "local-bulk", "local-audit"]
        Capture(names, save=False).local()
        # The rotation workflow's steps: a start, then its finish, on the onboarded world.
        _, started = run("local", "run", EVENTS / "external-id-rotation-start.json", "--world", "after.json")
        Path("rotating.json").write_text(json.dumps(started["world"]))
        run("local", "run", EVENTS / "external-id-rotation-finish.json", "--world", "rotating.json")
        # The steps only a cluster with a Node API runs (its access key).
        world = EVENTS / "sample-world-node-api.json"
        _, first = run("local", "run", EVENTS / "cluster-registered-node-api.json", "--world", world)
        Path("node-after.json").write_text(json.dumps(first["world"]))
        # Zero-touch rotation: the key moves to the pending ID between start and finish.
        run("local", "run", EVENTS / "external-id-rotation-start.json", "--world", "node-after.json")
        run("local", "run", EVENTS / "cluster-deregistered-node-api.json", "--world", "node-after.json")
    finally:
        Dispatcher.invoke = original  # type: ignore[method-assign]
    target = ROOT / "events" / "functions"
    target.mkdir(exist_ok=True)
    for logical_id, event in sorted(seen.items()):
        (target / f"{logical_id}.json").write_text(json.dumps(event, indent=2) + "\n")
        print(f"events/functions/{logical_id}.json")


def capture(names: list[str]) -> None:
    if names == ["functions"]:
        with tempfile.TemporaryDirectory() as scratch:
            os.chdir(scratch)
            functions()
        return
    target = Capture(names)
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        if any(target.wanted(n) for n in ("local-onboarded", "local-revoked", "local-many", "doctor-broken")) or (
            names and any(n.startswith(("local-", "doctor-")) for n in names)
        ):
            target.local()
        if not names or any(n.startswith("aws-") for n in names):
            target.operator()


if __name__ == "__main__":
    capture(sys.argv[1:])
