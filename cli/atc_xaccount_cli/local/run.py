"""`atc-xaccount local run`: events through the real state machines on the emulator.

One event or several (started together, on one world); each execution is followed,
its published events collected, and every successful onboarding proven.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atc_xaccount.external_ids import read_external_id, secret_name

# Re-exported: the emulator's callers read files and report usage errors through this module.
from atc_xaccount_cli.errors import UsageError as UsageError
from atc_xaccount_cli.executions import cause_message as cause_message
from atc_xaccount_cli.executions import compensation_json, history_json
from atc_xaccount_cli.inputs import read_bytes as read_bytes
from atc_xaccount_cli.inputs import read_event as read_event
from atc_xaccount_cli.inputs import read_world as read_world
from atc_xaccount_cli.local.aws_time import AwsTiming
from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, REGION, Emulator, ExecutionResult
from atc_xaccount_cli.local.faults import FaultPlan
from atc_xaccount_cli.local.proof import Proof, prove_access
from atc_xaccount_cli.local.world import WorldError

ONBOARD, OFFBOARD, AUDIT = "OnboardStateMachine", "OffboardStateMachine", "AuditStateMachine"
BULK, ROTATE = "BulkStateMachine", "RotateStateMachine"


@dataclass
class ExecutionReport:
    label: str
    machine: str
    rule: str
    result: ExecutionResult
    calls: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    proof: Proof | None = None
    external_id: str | None = None
    #: A bulk execution's report, read back from S3 (every line of the file).
    bulk_report: dict[str, Any] | None = None

    @property
    def cause_message(self) -> str | None:
        return cause_message(self.result.cause)

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.label,
            "stateMachine": self.machine,
            "rule": self.rule,
            "execution": self.result.name,
            "status": self.result.status,
            "error": self.result.error,
            "cause": self.cause_message,
            "output": self.result.output,
            "calls": self.calls,
            "stateTransitions": self.result.transitions,
            "states": [s.to_json() for s in self.result.states],
            **compensation_json(self.result),
            "events": [{"detail-type": e["detail-type"], "detail": e["detail"]} for e in self.events],
            "proof": self.proof.to_dict() if self.proof else None,
            **({"bulkReport": self.bulk_report} if self.bulk_report is not None else {}),
            # Every state's input and output as Step Functions records them (kept 90 days, readable
            # with states:GetExecutionHistory): what may and may not travel through the state.
            "history": history_json(self.result.history),
        }


@dataclass
class RunReport:
    """Every execution of one run, and the world and calls they left."""

    executions: list[ExecutionReport]
    world: dict[str, Any]
    calls: dict[str, Any]
    faults: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: The largest state payload (bytes) and execution history (events) the run reached.
    largest_payload: int = 0
    largest_history: int = 0
    #: Each step's (function's) calls: `local run --verbose` lists them.
    calls_by_step: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return all(e.result.status == "SUCCEEDED" for e in self.executions)

    # One execution is the common case; these keep its report one attribute away.
    @property
    def result(self) -> ExecutionResult:
        return self.executions[0].result

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for x in self.executions for e in x.events]

    @property
    def proof(self) -> Proof | None:
        return self.executions[0].proof

    @property
    def cause_message(self) -> str | None:
        return self.executions[0].cause_message

    def to_json(self) -> dict[str, Any]:
        """DESIGN 3.4's object; with several executions, one entry each under `executions`."""
        if len(self.executions) == 1:
            single = self.executions[0].to_json()
            extra = {"callsByStep": self.calls_by_step, "seconds": round(self.seconds, 3)}
            return {**single, "world": self.world, "calls": self.calls, "faults": self.faults, **extra}
        failed = next((e for e in self.executions if e.result.status != "SUCCEEDED"), None)
        return {
            "status": "SUCCEEDED" if failed is None else "FAILED",
            "error": failed.result.error if failed else None,
            "cause": failed.cause_message if failed else None,
            "output": None,
            "world": self.world,
            "calls": self.calls,
            "executions": [e.to_json() for e in self.executions],
            "faults": self.faults,
            "seconds": round(self.seconds, 3),
            "callsByStep": self.calls_by_step,
        }


def _accounts_of(event: dict[str, Any]) -> list[str]:
    detail = event.get("detail", event)
    if not isinstance(detail, dict):
        return []
    return [
        str(detail[k])
        for k in ("clusterManagerAccountId", "s3AccountId")
        if isinstance(detail.get(k), str) and detail[k].isdigit() and len(detail[k]) == 12
    ]


def run_local(root: Path, event_files: list[Path], world_file: Path | None, **options: Any) -> RunReport:
    """Read the event and world files (usage errors name the file), then run."""
    events = [(str(path), read_event(path)) for path in event_files]
    return run_events(root, events, read_world(world_file), **options)


def run_event(root: Path, event: dict[str, Any], world: dict[str, Any], **options: Any) -> RunReport:
    return run_events(root, [("event", event)], world, **options)


def run_events(
    root: Path,
    events: list[tuple[str, dict[str, Any]]],
    world: dict[str, Any],
    *,
    parameters: dict[str, str] | None = None,
    verbose: bool = False,
    on_state: Any = None,
    on_progress: Any = None,
    prove: bool = True,
    detail_machine: str = ONBOARD,
    faults: FaultPlan | None = None,
    payload_limit: int | None = None,
    history_limit: int | None = None,
    sequential: bool = False,
    aws_timing: AwsTiming | None = None,
) -> RunReport:
    """Seed `world`, start every event at once (`sequential`: each after the previous
    ended), follow each to its end, report."""
    import time

    limits = {"parameters": parameters, "verbose": verbose, "payload_limit": payload_limit}
    with _emulator(root, {**limits, "history_limit": history_limit, "aws_timing": aws_timing}) as emulator:
        routes = []
        for label, event in events:
            try:
                route = emulator.route(event)
            except LookupError as exc:
                raise UsageError(f"{label}: {exc}") from exc
            # A bare detail with a rotation `phase` is a rotation's manual execution.
            machine = ROTATE if isinstance(event.get("phase"), str) else detail_machine
            routes.append(route or (machine, "manual execution (detail only)"))
        try:
            emulator.seed(world)
        except WorldError as exc:
            raise UsageError(f"world file: {exc}") from exc
        if faults is not None:
            emulator.dispatcher.before_call = faults.before_call
            emulator.dispatcher.around_call = faults.around_call
            emulator.dispatcher.after_call = faults.after_call
        started = time.monotonic()
        with emulator.counting() as ledger:
            starts = [(event, machine) for (_, event), (machine, _) in zip(events, routes, strict=True)]
            if sequential:
                results = [emulator.follow(emulator.start(event, machine)) for event, machine in starts]
            else:
                arns = [emulator.start(event, machine) for event, machine in starts]
                live = {"on_state": on_state, "on_progress": on_progress} if len(arns) == 1 else {}
                results = [emulator.follow(arn, **live) for arn in arns]
            calls = ledger.summary()
            by_step = {step: dict(sorted(c.items())) for step, c in sorted(ledger.by_step.items())}
            per_execution = [ledger.summary(r.name) for r in results]
        seconds = time.monotonic() - started
        emulator.dispatcher.before_call = emulator.dispatcher.around_call = emulator.dispatcher.after_call = None
        accounts = {a for _, event in events for a in _accounts_of(event)} | set(world["accounts"])
        after = emulator.snapshot(sorted(accounts | {AUTOMATION_ACCOUNT}))
        published = emulator.published_events()
        reports = []
        for (label, _), (machine, rule), result, used in zip(events, routes, results, per_execution, strict=True):
            report = ExecutionReport(label, machine, rule, result, used)
            report.events = [e for e in published if e.get("detail", {}).get("execution") == result.name]
            if prove and machine == ONBOARD and result.status == "SUCCEEDED":
                report.proof, report.external_id = _prove(emulator, result.output, after)
            reports.append(report)
    return RunReport(
        reports,
        after,
        calls,
        faults.injected if faults else [],
        seconds,
        largest_payload=emulator.limits.largest_payload,
        largest_history=emulator.limits.largest_history,
        calls_by_step=by_step,
    )


def _emulator(root: Path, options: dict[str, Any]) -> Emulator:
    limits = {k: options[k] for k in ("payload_limit", "history_limit", "aws_timing") if options.get(k)}
    return Emulator(root, parameters=options.get("parameters"), verbose=options.get("verbose", False), **limits)


def run_bulk(root: Path, bulk_file: Path, world: dict[str, Any], **options: Any) -> RunReport:
    """Upload a registrations file and run the bulk workflow over it (Distributed Map)."""
    import time

    body = read_bytes(bulk_file, "registrations file")
    with _emulator(root, options) as emulator:
        try:
            emulator.seed(world)
        except WorldError as exc:
            raise UsageError(f"world file: {exc}") from exc
        bucket = emulator.buckets["BulkBucket"]
        key = f"uploads/{bulk_file.name}"
        emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        if options.get("on_start"):  # e.g. the bench's progress log
            options["on_start"](emulator)
        started = time.monotonic()
        with emulator.counting() as ledger:
            result = emulator.follow(
                emulator.start({"bucket": bucket, "key": key}, BULK),
                on_state=options.get("on_state"),
                on_progress=options.get("on_progress"),
                timeout=3600,
            )
            calls = ledger.summary()
            by_step = {step: dict(sorted(c.items())) for step, c in sorted(ledger.by_step.items())}
        seconds = time.monotonic() - started
        if options.get("on_finish"):  # e.g. the bench reads the child executions before the emulator goes
            options["on_finish"](emulator, result)
        after = emulator.snapshot(sorted(set(world["accounts"]) | {AUTOMATION_ACCOUNT} | _bulk_accounts(body)))
        report = ExecutionReport(str(bulk_file), BULK, "bulk file", result, ledger.summary(result.name))
        report.bulk_report = _bulk_report(emulator, result)
    return RunReport(
        [report],
        after,
        calls,
        seconds=seconds,
        largest_payload=emulator.limits.largest_payload,
        largest_history=emulator.limits.largest_history,
        calls_by_step=by_step,
    )


def _bulk_report(emulator: Emulator, result: ExecutionResult) -> dict[str, Any] | None:
    """The bulk report the workflow wrote to S3 (its output names where)."""
    location = ((result.output or {}).get("report") or {}).get("report")
    if not isinstance(location, str) or not location.startswith("s3://"):
        return None
    bucket, _, key = location.removeprefix("s3://").partition("/")
    body = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    report: dict[str, Any] = json.loads(body)
    return report


def _bulk_accounts(body: bytes) -> set[str]:
    """The accounts a registrations file names (so the after-world shows them)."""
    import re

    return {account.decode() for account in re.findall(rb"\b\d{12}\b", body)}


def run_audit(root: Path, world: dict[str, Any], **options: Any) -> RunReport:
    """Run the drift audit state machine once over the world's registry."""
    import time

    with _emulator(root, options) as emulator:
        try:
            emulator.seed(world)
        except WorldError as exc:
            raise UsageError(f"world file: {exc}") from exc
        started = time.monotonic()
        with emulator.counting() as ledger:
            result = emulator.follow(
                emulator.start({}, AUDIT),
                on_state=options.get("on_state"),
                on_progress=options.get("on_progress"),
                timeout=3600,
            )
            repairs = _follow_repairs(emulator, result)
            calls = ledger.summary()
            by_step = {step: dict(sorted(c.items())) for step, c in sorted(ledger.by_step.items())}
        seconds = time.monotonic() - started
        after = emulator.snapshot(sorted(set(world["accounts"]) | {AUTOMATION_ACCOUNT}))
        published = emulator.published_events()
        report = ExecutionReport("audit", AUDIT, "schedule", result, ledger.summary(result.name))
        report.events = [e for e in published if e.get("detail", {}).get("execution") == result.name]
        executions = [report]
        for repair in repairs:
            # A repair re-runs onboarding; a deregistration that did not finish is re-driven instead.
            machine = OFFBOARD if f":execution:{OFFBOARD}:" in repair.arn else ONBOARD
            repaired = ExecutionReport("repair", machine, "audit repair", repair, ledger.summary(repair.name))
            repaired.events = [e for e in published if e.get("detail", {}).get("execution") == repair.name]
            executions.append(repaired)
    return RunReport(
        executions,
        after,
        calls,
        seconds=seconds,
        largest_payload=emulator.limits.largest_payload,
        largest_history=emulator.limits.largest_history,
        calls_by_step=by_step,
    )


def _follow_repairs(emulator: Emulator, audit: ExecutionResult) -> list[ExecutionResult]:
    """Onboarding executions the audit started to repair drift, followed to their end."""
    clusters = (audit.output or {}).get("clusters") or []
    return [emulator.follow(c["repairExecution"]) for c in clusters if c.get("repairExecution")]


def _prove(emulator: Emulator, output: dict[str, Any], world: dict[str, Any]) -> tuple[Proof, str | None]:
    import boto3

    request = output["request"]
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
        node_role_arn=output["nodeRoleArn"],
        access_role_arn=output["roleArn"],
        external_id=external_id,
        trust_policy=trust,
        bucket=buckets[0] if buckets else None,
        region=REGION,
        chain=_chain(request, external_id, world),
    )
    if output.get("accessKey"):
        from atc_xaccount_cli.local.proof import prove_access_key

        prove_access_key(proof, output["accessKey"], boto3.client("secretsmanager", region_name=REGION))
    return proof, external_id


def _chain(request: dict[str, Any], external_id: str, world: dict[str, Any]) -> Any:
    """The doctor's evaluation of the onboarded cluster (read as the automation role, as the doctor does)."""
    import os

    from atc_xaccount.chain import evaluate_chain
    from atc_xaccount.chain_reads import read_chain
    from atc_xaccount.model import ClusterRequest
    from atc_xaccount.steps.context import StepContext
    from atc_xaccount_cli.local.doctor import world_organizations

    ctx = StepContext.from_env(os.environ, "local-proof")
    docs = read_chain(ctx.sessions, ClusterRequest.from_dict(request), organizations=world_organizations(world))
    return evaluate_chain(docs, external_id, region=REGION)
