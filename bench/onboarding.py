"""One onboarding of the sample cluster on the emulator, then the same event again.

Figures: AWS API calls (from the emulator's ledger, as `local run --json` reports them),
state transitions (StateEntered events of the execution history: AWS bills Standard
workflows per state transition, one per state entered, retries included), Lambda
invocations and GB-seconds (per-state durations of the emulator's history), and whether
access works afterwards (the project's evaluator, as for the baseline).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from atc_xaccount_cli.local.dispatch import is_write
from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT
from atc_xaccount_cli.local.run import RunReport, run_event
from atc_xaccount_cli.local.template import SamApp, load_yaml
from bench.checks import access_report

#: Step Functions Standard, per state transition (us-east-1).
SFN_USD_PER_1000_TRANSITIONS = 0.025
#: Lambda arm64, first pricing tier, and per request (us-east-1).
LAMBDA_USD_PER_GB_SECOND = 0.0000133334
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
MACHINE = "OnboardStateMachine"


def call_breakdown(calls: dict[str, Any]) -> dict[str, Any]:
    ops: dict[str, int] = calls["by_operation"]
    writes = {k: n for k, n in ops.items() if is_write(k)}
    return {
        "total": calls["total"],
        "reads": calls["total"] - sum(writes.values()),
        "writes": sum(writes.values()),
        "iam_writes": sum(n for k, n in writes.items() if k.startswith("iam:")),
        "sts_assume_role": ops.get("sts:AssumeRole", 0),
        "by_operation": ops,
    }


def _walk_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, including those inside Parallel branches and Map processors."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_walk_states(branch.get("States", {})))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(_walk_states(state[key].get("States", {})))
    return found


def lambda_functions(root: Path) -> dict[str, tuple[str, int]]:
    """State name → (function logical id, memory MB) for the onboarding's Lambda tasks."""
    app = SamApp.load(root)
    machine = app.state_machines[MACHINE]
    template = load_yaml(root / "template.yaml")
    default_mb = int(((template.get("Globals") or {}).get("Function") or {}).get("MemorySize", 128))
    resources = template.get("Resources") or {}
    result: dict[str, tuple[str, int]] = {}
    for name, state in _walk_states(json.loads(machine.definition_path.read_text(encoding="utf-8"))["States"]).items():
        if state.get("Type") != "Task":
            continue
        resource = str(state.get("Resource", ""))
        if resource.endswith(":lambda:invoke"):
            resource = str((state.get("Parameters") or {}).get("FunctionName", ""))
        if not (resource.startswith("${") and resource.endswith("}")):
            continue
        target = machine.substitutions.get(resource[2:-1])
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            logical = target["Fn::GetAtt"][0]
            memory = (resources.get(logical, {}).get("Properties") or {}).get("MemorySize", default_mb)
            result[name] = (logical, int(memory))
    return result


def lambda_usage(report: RunReport, functions: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """Invocations and GB-seconds from the emulator's per-state durations."""
    per_state = []
    for state in report.result.states:
        if state.name in functions and state.millis is not None:
            memory = functions[state.name][1]
            billed = max(1, math.ceil(state.millis))
            per_state.append(
                {"state": state.name, "function": functions[state.name][0], "ms": round(state.millis, 1), "mb": memory}
            )
            per_state[-1]["gb_s"] = state.millis / 1000 * memory / 1024
            per_state[-1]["billed_gb_s"] = billed / 1000 * memory / 1024
    gb_s = sum(s["gb_s"] for s in per_state)
    billed = sum(s["billed_gb_s"] for s in per_state)
    return {
        "invocations": len(per_state),
        "gb_seconds": round(gb_s, 4),
        "billed_gb_seconds_1ms": round(billed, 4),
        "duration_ms": round(sum(s["ms"] for s in per_state), 1),
        "usd_per_1000": round(1000 * (billed * LAMBDA_USD_PER_GB_SECOND + len(per_state) * LAMBDA_USD_PER_REQUEST), 4),
        "states": [{k: v for k, v in s.items() if k not in ("gb_s", "billed_gb_s")} for s in per_state],
    }


def _our_access(world_before: dict[str, Any], world_after: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    cm, s3 = detail["clusterManagerAccountId"], detail["s3AccountId"]
    node = detail.get("nodeRoleName", "atc-node")
    access = detail.get("accessRoleName", "atc-s3-access-keys")
    accounts = world_after["accounts"]
    policies = accounts[cm].get("policies", {})
    attached = accounts[cm]["roles"][node].get("attached", [])
    docs = [policies[arn.rsplit("/", 1)[-1]]["document"] for arn in attached if arn.rsplit("/", 1)[-1] in policies]
    secrets = (accounts.get(AUTOMATION_ACCOUNT) or {}).get("secrets", {})
    external_id = next((v for k, v in secrets.items() if f"/{detail['clusterId']}/" in k), None)
    return access_report(
        before_trust=world_before["accounts"][s3]["roles"][access]["trust"],
        after_trust=accounts[s3]["roles"][access]["trust"],
        identity_docs=docs,
        node_role_arn=f"arn:aws:iam::{cm}:role/{node}",
        access_role_arn=f"arn:aws:iam::{s3}:role/{access}",
        external_id=external_id,
    )


def measure(root: Path, event: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail", event)
    first = run_event(root, event, world, prove=False)
    rerun = run_event(root, event, first.world, prove=False)
    functions = lambda_functions(root)
    result: dict[str, Any] = {}
    for label, report in (("first", first), ("rerun", rerun)):
        result[label] = {
            "status": report.result.status,
            "error": report.result.error,
            "cause": report.cause_message,
            "calls": call_breakdown(report.calls),
            "state_transitions": report.result.transitions,
            "states": [s.name for s in report.result.states],
            "sfn_usd_per_1000": round(report.result.transitions * SFN_USD_PER_1000_TRANSITIONS, 4),
            "lambda": lambda_usage(report, functions),
        }
    result["access_after_first"] = _our_access(world, first.world, detail)
    result["world_after_first"] = first.world
    return result
