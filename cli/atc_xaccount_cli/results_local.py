"""Typed results of `local run` and `local audit`: the execution(s), and what the emulator adds.

The emulator knows more than AWS tells an operator: the world after the run (so the
policies as written), the external ID, the proof of access, and how many calls each step
made. All of it is read from `local run --json`'s object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atc_xaccount_cli.results import AUDIT, Calls, Fields, Onboarded, Run, read_run


@dataclass(frozen=True)
class ProofStep:
    claim: str
    ok: bool
    how: str
    detail: str


@dataclass(frozen=True)
class Proof:
    ok: bool
    steps: list[ProofStep]


@dataclass(frozen=True)
class Documents:
    """What onboarding left in both accounts, from the world after the run."""

    assume_policy: Any
    versions: int | None
    trust: Any


@dataclass(frozen=True)
class LocalRun:
    run: Run
    calls: Calls
    faults: list[str] = field(default_factory=list)
    documents: Documents | None = None
    external_id: str | None = None
    proof: Proof | None = None
    #: Per step (function): its calls, shown with --verbose.
    by_step: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Repair executions an audit started.
    repairs: list[Run] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class ManyLine:
    label: str
    status: str
    name: str
    transitions: int
    writes: int
    error: str | None
    cause: str | None


@dataclass(frozen=True)
class TrustSummary:
    role: str
    account: str
    statements: int
    ours: int
    external_ids: int


@dataclass(frozen=True)
class ManyRuns:
    """Several event files started at once, on one world."""

    lines: list[ManyLine]
    calls: Calls
    faults: list[str]
    seconds: float
    trust: list[TrustSummary]


def read_local(body: dict[str, Any]) -> LocalRun | ManyRuns:
    f = Fields(body, "result")
    faults = sorted({fault.text("call") for fault in f.objs("faults")})
    calls = Calls.read(f.obj("calls"))
    executions = f.objs("executions")
    repairs: list[Run] = []
    if executions and executions[0].opt_text("stateMachine") == AUDIT:
        # An audit and the repair executions it started.
        body, repairs = executions[0].data, [read_run(e.data) for e in executions[1:]]
    elif executions:
        return _many(f, calls, faults)
    run = read_run(body)
    world = f.obj("world")
    documents = external_id = None
    if isinstance(run.outcome, Onboarded):
        documents = _documents(world, run.outcome)
        external_id = _secret(world, run.outcome.secret_name)
    proof = f.opt_obj("proof")
    by_step = f.opt_obj("callsByStep")
    return LocalRun(
        run=run,
        calls=calls,
        faults=faults,
        documents=documents,
        external_id=external_id,
        proof=_proof(proof) if proof else None,
        by_step={k: dict(v) for k, v in (by_step.data if by_step else {}).items()},
        repairs=repairs,
        seconds=float(f.raw("seconds") or 0),
    )


def _secret(world: Fields, name: str | None) -> str | None:
    """The external ID as the world after the run holds it (the automation account's secrets)."""
    for state in world.obj("accounts").data.values():
        value = (state.get("secrets") or {}).get(name) if name else None
        if isinstance(value, str):
            return value
    return None


def _documents(world: Fields, onboarded: Onboarded) -> Documents:
    accounts = world.obj("accounts")
    policy = accounts.opt_obj(f"{onboarded.cluster_manager_account}")
    policy = policy.opt_obj("policies") if policy else None
    policy = policy.opt_obj(onboarded.assume_policy_name) if policy else None
    role = accounts.opt_obj(f"{onboarded.s3_account}")
    role = role.opt_obj("roles") if role else None
    role = role.opt_obj(onboarded.access_role_name) if role else None
    return Documents(
        assume_policy=policy.raw("document") if policy else None,
        versions=policy.number("versions", 0) or None if policy else None,
        trust=role.raw("trust") if role else None,
    )


def _proof(f: Fields) -> Proof:
    steps = [
        ProofStep(s.text("claim"), s.flag("ok"), s.opt_text("how") or "", s.opt_text("detail") or "")
        for s in f.objs("steps")
    ]
    return Proof(f.flag("ok"), steps)


def _many(f: Fields, calls: Calls, faults: list[str]) -> ManyRuns:
    lines = []
    for e in f.objs("executions"):
        lines.append(
            ManyLine(
                label=e.opt_text("input") or "",
                status=e.text("status"),
                name=e.text("execution"),
                transitions=e.number("stateTransitions", 0),
                writes=e.obj("calls").number("writes"),
                error=e.opt_text("error"),
                cause=e.opt_text("cause"),
            )
        )
    return ManyRuns(lines, calls, faults, float(f.raw("seconds") or 0), _trust_summary(f.obj("world")))


def _trust_summary(world: Fields) -> list[TrustSummary]:
    found = []
    for account, state in sorted(world.obj("accounts").data.items()):
        for name, role in sorted((state.get("roles") or {}).items()):
            statements = (role.get("trust") or {}).get("Statement") or []
            ours = [s for s in statements if str(s.get("Sid", "")).startswith("AtcXaccount") and s.get("Condition")]
            if ours:
                ids = 0
                for statement in ours:
                    value = statement["Condition"].get("StringEquals", {}).get("sts:ExternalId", [])
                    ids += len(value) if isinstance(value, list) else 1
                found.append(TrustSummary(name, account, len(statements), len(ours), ids))
    return found
