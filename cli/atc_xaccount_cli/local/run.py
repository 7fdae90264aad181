"""`atc-xaccount local run`: one onboarding on the emulator, reported for people or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atc_xaccount.external_ids import read_external_id, secret_name

from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, REGION, Emulator, ExecutionResult
from atc_xaccount_cli.local.proof import Proof, prove_access
from atc_xaccount_cli.local.world import WorldError, load_world


class UsageError(ValueError):
    """Bad command-line input: exit 2 with this message, never a traceback."""


@dataclass
class RunReport:
    result: ExecutionResult
    world: dict[str, Any]
    calls: dict[str, Any]
    events: list[dict[str, Any]]
    proof: Proof | None
    rule: str
    external_id: str | None

    @property
    def cause_message(self) -> str | None:
        return cause_message(self.result.cause)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.result.status,
            "error": self.result.error,
            "cause": self.cause_message,
            "output": self.result.output,
            "world": self.world,
            "calls": self.calls,
            "execution": self.result.name,
            "stateTransitions": self.result.transitions,
            "states": [{"name": s.name, "ms": round(s.millis or 0, 1), "failed": s.failed} for s in self.result.states],
            "events": [{"detail-type": e["detail-type"], "detail": e["detail"]} for e in self.events],
            "proof": self.proof.to_dict() if self.proof else None,
            "rule": self.rule,
        }


def cause_message(cause: str | None) -> str | None:
    """Lambda's error payload holds `errorMessage`; show that, not the JSON around it."""
    if not cause:
        return cause
    try:
        parsed = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    return parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{what} {path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def _accounts_of(event: dict[str, Any]) -> list[str]:
    detail = event.get("detail", event)
    if not isinstance(detail, dict):
        return []
    return [
        str(detail[k])
        for k in ("clusterManagerAccountId", "s3AccountId")
        if isinstance(detail.get(k), str) and detail[k].isdigit() and len(detail[k]) == 12
    ]


def run_local(
    root: Path,
    event_file: Path,
    world_file: Path | None,
    **options: Any,
) -> RunReport:
    """Read the event and world files (usage errors name the file), then run."""
    event = read_json(event_file, "event file")
    if not isinstance(event, dict):
        raise UsageError(f"event file {event_file}: must hold a JSON object (an EventBridge event or its detail)")
    try:
        world = load_world(world_file) if world_file else {"accounts": {}}
    except WorldError as exc:
        raise UsageError(f"world file: {exc}") from exc
    return run_event(root, event, world, **options)


def run_event(
    root: Path,
    event: dict[str, Any],
    world: dict[str, Any],
    *,
    parameters: dict[str, str] | None = None,
    verbose: bool = False,
    on_state: Any = None,
    prove: bool = True,
) -> RunReport:
    """Seed `world`, run `event` through the onboarding state machine, report."""
    with Emulator(root, parameters=parameters, verbose=verbose) as emulator:
        accepted = emulator.rule_accepts(event)
        if accepted is False:
            patterns = json.dumps(emulator.rule_patterns())
            raise UsageError(
                f"the rule in template.yaml would not deliver this event "
                f"(patterns {patterns}); check `source` and `detail-type`"
            )
        rule = "manual execution (detail only)" if accepted is None else "EventBridge rule ClusterRegistered"
        try:
            emulator.seed(world)
        except WorldError as exc:
            raise UsageError(f"world file: {exc}") from exc
        with emulator.counting() as ledger:
            arn = emulator.start(event)
            result = emulator.follow(arn, on_state=on_state)
            calls = ledger.summary()
        accounts = sorted(set(world["accounts"]) | set(_accounts_of(event)) | {AUTOMATION_ACCOUNT})
        after = emulator.snapshot(accounts)
        events = emulator.published_events()
        proof, external_id = None, None
        if result.status == "SUCCEEDED" and prove:
            proof, external_id = _prove(emulator, result.output, after)
    return RunReport(result, after, calls, events, proof, rule, external_id)


def _prove(emulator: Emulator, output: dict[str, Any], world: dict[str, Any]) -> tuple[Proof, str | None]:
    import boto3

    request, verify = output["request"], output["verify"]
    stored = read_external_id(
        boto3.client("secretsmanager", region_name=REGION),
        secret_name(emulator.secret_prefix, request["clusterId"]),
    )
    if stored is None:
        proof = Proof()
        proof.add("the external ID secret exists", False, "read from Secrets Manager")
        return proof, None
    external_id = stored[1]
    s3_account = world["accounts"][request["s3AccountId"]]
    trust = s3_account["roles"][request["accessRoleName"]]["trust"]
    buckets = request.get("buckets") or []
    proof = prove_access(
        node_role_arn=verify["nodeRoleArn"],
        access_role_arn=verify["roleArn"],
        external_id=external_id,
        trust_policy=trust,
        bucket=buckets[0] if buckets else None,
        region=REGION,
    )
    return proof, external_id
