"""Cold start: import + first call of each handler in a fresh interpreter, vs `import boto3`.

Each probe is a new `python -c` process with a Lambda-like environment (the function's
folder and the layer on PYTHONPATH, the template's Globals variables, and what Lambda sets
itself: `LAMBDA_TASK_ROOT`, and with `Tracing: Active` a sampled trace header and an X-Ray
daemon address, so tracing and metrics are on or off exactly as deployed). It times
`import app` and then one `lambda_handler` call with the input the state machine really
gave that step. AWS is the emulator's moto, reached over HTTP
(`bench.awsserver`), so the probe process imports nothing Lambda would not.

Every round onboards a fresh pair of accounts (the sample world under new account IDs and
a new cluster ID) by running the steps' probes in workflow order, so each step's first
call sees exactly the state it sees in a first onboarding and makes the same writes.
Handlers that the onboarding workflow does not invoke get import-only probes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import awsserver, worlds

BENCH_DIR = Path(__file__).resolve().parent
#: The plain-boto3 anchor's handler (`plain/app.py`): imported in the probe as `app`.
PLAIN_DIR = BENCH_DIR / "plain"
PYCACHE = BENCH_DIR / ".pycache"
#: Account-ID prefixes of the worlds the probes onboard: ours, and the plain anchors'.
OURS, PLAIN = 71, 72
NO_AWS_FILE = BENCH_DIR / ".no-aws-config"  # absent on purpose: Lambda has no ~/.aws files

#: The probe. Reads its spec from stdin first, so only the import and the call are timed.
PROBE = r"""
import json, sys, time
spec = json.loads(sys.stdin.read())


class Context:
    def __init__(self, name):
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + name
        self.memory_limit_in_mb = 256
        self.aws_request_id = "00000000-0000-0000-0000-000000000000"
        self.log_group_name = "/aws/lambda/" + name
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 60000


error = None
recorded = None
if spec.get("record"):
    # Round 0 only (never timed): every AWS call the handler makes, with its parameters and
    # the credentials it was signed with, so the plain anchor can replay exactly those calls.
    import base64, copy
    import botocore.client

    recorded = []
    original = botocore.client.BaseClient._make_api_call

    def _plain(value):
        if isinstance(value, bytes):
            return {"__bytes__": base64.b64encode(value).decode()}
        if isinstance(value, dict):
            return {k: _plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_plain(v) for v in value]
        return value

    def _recording(client, operation, params):
        creds = client._request_signer._credentials
        entry = {
            "service": client.meta.service_model.service_name,
            "operation": operation,
            "region": client.meta.region_name,
            "params": _plain(copy.deepcopy(params)),
            "access_key": creds.access_key if creds is not None else None,
            "error": None,
        }
        recorded.append(entry)
        try:
            answer = original(client, operation, params)
        except Exception as exc:
            entry["error"] = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") or type(exc).__name__
            raise
        if operation == "AssumeRole":
            entry["issued_access_key"] = answer["Credentials"]["AccessKeyId"]
        return answer

    botocore.client.BaseClient._make_api_call = _recording
t0 = time.perf_counter()
if spec["mode"] == "boto3":
    import boto3
    t1 = time.perf_counter()
elif spec["mode"] == "boto3-call":
    import boto3
    t1 = time.perf_counter()
    boto3.client("sts").get_caller_identity()
else:
    import app
    t1 = time.perf_counter()
    if spec.get("event") is not None:
        try:
            app.lambda_handler(spec["event"], Context(spec["function"]))
        except Exception as exc:
            error = type(exc).__name__ + ": " + str(exc)[:300]
t2 = time.perf_counter()
result = {"import_ms": (t1 - t0) * 1e3, "call_ms": (t2 - t1) * 1e3, "error": error}
if recorded is not None:
    result["calls"] = recorded
print("\nBENCH-PROBE " + json.dumps(result))
"""


@dataclass
class Target:
    """One probe target: a handler folder (or the boto3 baseline)."""

    name: str
    mode: str  # handler | plain | boto3 | boto3-call
    code_dir: Path | None = None
    logical_id: str | None = None
    payload: str | None = None  # recorded state input (JSON text), None: import only


def _run_probe(
    target: Target, env: dict[str, str], payload: Any, traced: bool = False, record: bool = False
) -> dict[str, Any]:
    spec = {"mode": target.mode, "function": target.logical_id or target.name, "event": payload, "record": record}
    if target.mode == "plain":
        # No layer, no Powertools, no template variables beyond Lambda's own: plain boto3.
        env = {k: v for k, v in env.items() if not k.startswith("POWERTOOLS_")}
        env.update(
            {
                "PYTHONPATH": str(PLAIN_DIR),
                "AWS_LAMBDA_FUNCTION_NAME": target.name,
                "LAMBDA_TASK_ROOT": str(PLAIN_DIR),
            }
        )
    elif target.code_dir is not None:
        env = {
            **env,
            "PYTHONPATH": os.pathsep.join([str(target.code_dir), env["BENCH_LAYER"]]),
            "AWS_LAMBDA_FUNCTION_NAME": target.logical_id or target.name,
            "LAMBDA_TASK_ROOT": str(target.code_dir),
            **(_active_tracing_env(env["BENCH_XRAY_DAEMON"]) if traced else {}),
        }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        cwd=str(PLAIN_DIR if target.mode == "plain" else target.code_dir or BENCH_DIR),
        timeout=180,
    )
    marker = [line for line in done.stdout.splitlines() if line.startswith("BENCH-PROBE ")]
    if not marker:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"import_ms": None, "call_ms": None, "error": f"probe crashed: {tail[0][:300]}"}
    return json.loads(marker[-1][len("BENCH-PROBE ") :])


def _active_tracing_env(daemon: str) -> dict[str, str]:
    """What Lambda sets for a function with `Tracing: Active` (the trace header of a sampled request)."""
    host, port = daemon.rsplit(":", 1)
    return {
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": daemon,
        "_AWS_XRAY_DAEMON_ADDRESS": host,
        "_AWS_XRAY_DAEMON_PORT": port,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def traced_functions(root: Path) -> dict[str, bool]:
    """Logical ID -> whether the template gives the function `Tracing: Active`."""
    from atc_xaccount_cli.local.template import load_yaml

    template = load_yaml(root / "template.yaml")
    default = ((template.get("Globals") or {}).get("Function") or {}).get("Tracing")
    return {
        logical: (resource.get("Properties") or {}).get("Tracing", default) == "Active"
        for logical, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


@contextlib.contextmanager
def _xray_daemon() -> Iterator[str]:
    """A UDP socket where the X-Ray daemon would listen; what the SDK sends there is dropped."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sink.getsockname()[1]}"


def _environment(root: Path, function_env: dict[str, str], endpoint: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": str(NO_AWS_FILE),
        "AWS_SHARED_CREDENTIALS_FILE": str(NO_AWS_FILE),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        # Tracing and metrics as the template configures them: nothing forced off here.
        **function_env,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "BENCH_LAYER": str(root / "layers" / "common"),
    }


def _function_env(emulator: Any) -> dict[str, str]:
    """The template's Globals variables as the emulator resolved them (log level as deployed)."""
    env = {k: os.environ[k] for k in emulator.app.environment if k in os.environ}
    if "POWERTOOLS_LOG_LEVEL" in env:
        env["POWERTOOLS_LOG_LEVEL"] = emulator.app.parameters.get("LogLevel", "INFO")
    return env


def measure(root: Path, event: dict[str, Any], world: dict[str, Any], rounds: int) -> dict[str, Any]:
    """Median cold start per handler and of `import boto3`, over `rounds` fresh processes each."""
    from atc_xaccount_cli.local.engine import Emulator

    started = time.perf_counter()
    with Emulator(root) as emulator:
        recorded: dict[str, str] = {}
        order: list[str] = []
        original = emulator.dispatcher.invoke

        def recording(function_ref: str, payload: Any, headers: dict[str, str]) -> bytes:
            logical_id = function_ref.rsplit(":", 1)[-1]
            if logical_id not in recorded:
                recorded[logical_id] = payload.decode() if isinstance(payload, bytes) else str(payload or "{}")
                order.append(logical_id)
            return original(function_ref, payload, headers)

        emulator.dispatcher.invoke = recording  # type: ignore[method-assign]
        emulator.seed(world)
        reference = emulator.follow(emulator.start(event))
        emulator.dispatcher.invoke = original  # type: ignore[method-assign]

        by_dir = {spec.code_dir.resolve(): logical for logical, spec in emulator.app.functions.items()}
        targets = [Target("import boto3", "boto3"), Target("import boto3 + 1st STS call", "boto3-call")]
        handlers: list[Target] = []
        for app_py in sorted((root / "functions").glob("*/app.py")):
            logical = by_dir.get(app_py.parent.resolve())
            handlers.append(Target(app_py.parent.name, "handler", app_py.parent, logical, recorded.get(logical or "")))
        # Workflow order for the steps it invokes (each round is a real onboarding), then the rest.
        rank = {logical: i for i, logical in enumerate(order)}
        handlers.sort(key=lambda t: (rank.get(t.logical_id or "", len(rank)), t.name))
        targets.extend(handlers)

        names = worlds.names_of(event)
        world_text = json.dumps(world)
        samples: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        operations: dict[str, list[str]] = {}
        traced = traced_functions(root)
        plain: dict[str, Target] = {}  # handler name -> its plain-boto3 anchor
        samples.update({f"plain {t.name}": [] for t in handlers if t.payload})
        with awsserver.serving() as (endpoint, observed), _xray_daemon() as daemon:
            env = {**_environment(root, _function_env(emulator), endpoint), "BENCH_XRAY_DAEMON": daemon}
            for round_no in range(rounds + 1):  # round 0 records the calls and warms caches, not counted
                # Ours and the anchors onboard separate copies of the sample world.
                emulator.seed(json.loads(worlds.remap_text(world_text, OURS, round_no, names)))
                emulator.seed(json.loads(worlds.remap_text(world_text, PLAIN, round_no, names)))
                for target in targets:
                    payload = (
                        json.loads(worlds.remap_text(target.payload, OURS, round_no, names)) if target.payload else None
                    )
                    record = round_no == 0 and target.mode == "handler" and payload is not None
                    observed.take()
                    sample = _run_probe(target, env, payload, traced.get(target.logical_id or "", False), record)
                    calls = observed.take()
                    if round_no == 0:
                        operations[target.name] = calls
                        if record and sample.get("calls"):
                            text = worlds.unmap_text(json.dumps({"calls": sample["calls"]}), OURS, 0, names)
                            plain[target.name] = Target(f"plain {target.name}", "plain", payload=text)
                    else:
                        samples[target.name].append(sample)
                    anchor = plain.get(target.name)
                    if anchor is None or anchor.payload is None:
                        continue
                    observed.take()
                    replay = json.loads(worlds.remap_text(anchor.payload, PLAIN, round_no, names))
                    anchor_sample = _run_probe(anchor, env, replay)
                    anchor_calls = observed.take()
                    if round_no == 0:
                        operations[anchor.name] = anchor_calls
                    else:
                        samples[anchor.name].append(anchor_sample)
        targets.extend(plain.values())

    def median(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 1) if present else None

    results: dict[str, Any] = {}
    for target in targets:
        runs = samples[target.name]
        imports = [s["import_ms"] for s in runs]
        totals = [None if s["import_ms"] is None else s["import_ms"] + s["call_ms"] for s in runs]
        errors = [s["error"] for s in runs if s["error"]]
        called = target.mode == "boto3-call" or bool(target.payload)
        if target.mode == "handler":
            measured = "import + first call" if target.payload else "import only (not invoked by onboarding)"
        elif target.mode == "plain":
            measured = "import boto3 + the step's recorded calls, replayed"
        else:
            measured = "import only" if target.mode == "boto3" else "import + client + 1 call"
        results[target.name] = {
            "kind": {"handler": "handler", "plain": "plain"}.get(target.mode, "baseline"),
            "logical_id": target.logical_id,
            "measured": measured,
            "import_ms": median(imports),
            "first_call_ms": median([s["call_ms"] for s in runs]) if target.mode != "boto3" and called else None,
            "plain_anchor": plain[target.name].name if target.name in plain else None,
            "total_ms": median(totals),
            "total_ms_min": round(min(t for t in totals if t is not None), 1) if any(totals) else None,
            "total_ms_max": round(max(t for t in totals if t is not None), 1) if any(totals) else None,
            "processes": len(runs),
            "first_call_aws_operations": operations.get(target.name, []),
            "errors": len(errors),
            "error": errors[0] if errors else None,
        }
    return {
        "reference_status": reference.status,
        "rounds": rounds,
        "tracing_active": sorted(logical for logical, on in traced.items() if on),
        "environment": {k: v for k, v in env.items() if k.startswith(("POWERTOOLS_", "AWS_LAMBDA_", "_X_AMZN"))},
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
