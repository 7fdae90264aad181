"""Human reports of executions, one renderer per outcome: onboarded, revoked, failed (and
compensated), audit, bulk, rotation, still running. The same for `local run` and for the operator
commands against AWS; the emulator's extras are added by render/local.py.
"""

from __future__ import annotations

from functools import singledispatch

from atc_xaccount_cli.render.text import Out, analyzer_lines, state_line
from atc_xaccount_cli.results import (
    Audited,
    Bulked,
    Execution,
    Failed,
    Onboarded,
    Outcome,
    Revoked,
    Rotated,
    Run,
    StillRunning,
)

WHAT = {
    "OnboardStateMachine": "onboarding",
    "OffboardStateMachine": "deregistration",
    "AuditStateMachine": "audit",
    "BulkStateMachine": "bulk onboarding",
    "RotateStateMachine": "external ID rotation",
}


def header(out: Out, execution: Execution) -> None:
    """`SUCCEEDED  (rule; execution NAME, N states)`, the error and cause, the events published."""
    where = [execution.rule] if execution.rule else []
    where.append(f"execution {execution.name}, {execution.transitions} states")
    out.line()
    out.line(f"{execution.status}  ({'; '.join(where)})")
    if execution.duplicate:
        out.line("  (a duplicate: this request already ran as that execution; nothing was started)")
    if execution.status not in ("SUCCEEDED", "RUNNING"):
        out.line(f"  error  {execution.error}")
        out.line(f"  cause  {execution.cause}")
    for detail_type in execution.published:
        out.line(f"Published on the bus: {detail_type}")


def states(out: Out, execution: Execution) -> None:
    """The states, when they were not shown live (`status`, a followed run shown afterwards)."""
    out.line("Execution")
    for state in execution.states:
        out.line(state_line(state))


def render_run(out: Out, run: Run, *, with_states: bool = False) -> None:
    """An execution followed by the operator commands (register, deregister, status, audit)."""
    if with_states:
        out.line()
        states(out, run.execution)
    header(out, run.execution)
    outcome(run.outcome, out)


@singledispatch
def outcome(result: Outcome, out: Out) -> None:
    raise TypeError(f"no renderer for {type(result).__name__}")


@outcome.register
def _onboarded(result: Onboarded, out: Out) -> None:
    for text in analyzer_lines(result.analyzer):
        out.line(text)
    if result.undecidable:
        out.line("Undecidable links (they depend on what only the real request carries; `doctor` explains):")
        for check in result.undecidable:
            out.line(f"  {check}")
    out.line()
    if result.access_key is not None:
        access_key_lines(out, result)
        return
    out.line(f"{result.cluster_id} is onboarded. In the Cluster Manager web UI (Credentials > Assume Role),")
    out.line("create the access key with:")
    out.line(f"  Role ARN     {result.role_arn}")
    where = f"in Secrets Manager as {result.secret_name}" if result.secret_name else "in its secret"
    out.line(f"  External ID  {where}: `atc-xaccount show {result.cluster_id}` prints it")


def access_key_lines(out: Out, result: Onboarded) -> None:
    """The access key onboarding created itself, through the cluster's Node API."""
    key = result.access_key
    assert key is not None
    out.line(f"The access key was created through the cluster's Node API ({key.url}): nothing to type.")
    out.line(f"  Access key   {key.key_id} ({key.state}, {key.action}); its secret in {key.secret_name}")
    out.line(f"  Role ARN     {result.role_arn}")
    out.line(f"  External ID  in the key only; kept in Secrets Manager as {result.secret_name}")


@outcome.register
def _revoked(result: Revoked, out: Out) -> None:
    out.line()
    if result.nothing_to_do:
        why = result.reason or "not registered"
        out.line(f"Nothing to do: cluster {result.cluster_id} {'was' if why == 'never registered' else 'is'} {why}.")
        return
    out.line(f"{result.cluster_id} is deregistered:")
    for change in result.changes:
        out.line(f"  {change.name:<17} {change.action:<10} {change.detail}".rstrip())


@outcome.register
def _failed(result: Failed, out: Out) -> None:
    if result.undone is None:
        return
    out.line()
    if not result.undone:
        out.line("Compensate ran: this execution had changed nothing, so nothing was undone.")
        return
    out.line("Compensate undid what this execution had changed:")
    for undone in result.undone:
        out.line(f"  {undone.change:<17} {undone.result}")


@outcome.register
def _audited(result: Audited, out: Out) -> None:
    out.line()
    out.line(
        f"Audited {result.audited} registered cluster(s): {result.in_sync} in sync, "
        f"{result.drifted} drifted, {result.failed} not checked"
    )
    for cluster in result.clusters:
        if cluster.failure:
            out.line(f"  {'FAIL':<6} {cluster.cluster_id}: could not be checked: {cluster.failure}")
        elif not cluster.drift:
            out.line(f"  {'ok':<6} {cluster.cluster_id}: in sync")
        else:
            repaired = " (repair started)" if cluster.repaired else ""
            out.line(f"  {'DRIFT':<6} {cluster.cluster_id}: drifted{repaired}")
            for drift in cluster.drift:
                out.line(f"         {drift.kind} in {drift.account}: {drift.detail}")
    if result.omitted:
        out.line(f"  ... and {result.omitted} more cluster(s) in sync, not listed")


@outcome.register
def _bulked(result: Bulked, out: Out) -> None:
    out.line()
    counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(result.counts.items()))
    out.line(f"{result.total} rows: {counts or 'none'}; report {result.report}")
    for row in result.problems:
        out.line(f"  line {row.line:>4}  {row.status:<9} {row.cluster_id or '-'}  {row.cause or ''}".rstrip())
    if result.omitted:
        out.line(f"  ... and {result.omitted} more in the report")


@outcome.register
def _rotated(result: Rotated, out: Out) -> None:
    out.line()
    if result.access_key and (result.completed or result.phase == "finish"):
        out.line(
            f"Rotation of {result.cluster_id} {'completed' if result.completed else 'finished'} through its Node API: "
            f"access key {result.access_key} carries the new external ID and browses through it; the previous ID "
            f"is withdrawn (trust policy {result.trust}). Nobody read or typed the ID."
        )
        if result.kept_for:
            out.line(f"The previous ID stays granted: {', '.join(result.kept_for)} still use it.")
        return
    if result.phase == "start":
        out.line(
            f"Rotation of {result.cluster_id} started: a pending external ID opens the role beside the "
            f"current one (trust policy {result.trust}); it is the secret's AWSPENDING version."
        )
        out.line("Next: update the access key in Cluster Manager with it, then finish the rotation.")
        return
    out.line(
        f"Rotation of {result.cluster_id} finished: the pending external ID is the cluster's "
        f"(trust policy {result.trust})."
    )
    if result.kept_for:
        out.line(f"The previous ID stays granted: {', '.join(result.kept_for)} still use it.")


@outcome.register
def _running(result: StillRunning, out: Out) -> None:
    out.line("Still running: `atc-xaccount status EXECUTION` shows where it is.")
