"""Human reports of `local run` and `local audit`: the execution, plus what only the emulator knows.

Onboarded: the documents as written, what to type into Cluster Manager (with the external
ID itself) and the proof of access. Several files: one line per execution and the trust
policies afterwards.
"""

from __future__ import annotations

from pathlib import Path

from atc_xaccount.redact import redact_external_ids
from atc_xaccount_cli.local.calls import is_write
from atc_xaccount_cli.render.execution import access_key_lines, header, outcome
from atc_xaccount_cli.render.text import FAIL, OK, Out, analyzer_lines, calls_line
from atc_xaccount_cli.results import Onboarded
from atc_xaccount_cli.results_local import LocalRun, ManyRuns


def banner(out: Out, inputs: list[Path], world_file: Path | None, what: str = "event") -> None:
    out.line("atc-xaccount local: the real state machines on an embedded AWS emulator (moto);")
    out.line("no AWS account is used.")
    for path in inputs:
        out.line(f"  {what:<5}  {path}")
    out.line(f"  world  {world_file or '(empty: no accounts seeded)'}")
    out.line()
    if len(inputs) <= 1:
        out.line("Execution")


def render_local(out: Out, result: LocalRun, *, verbose: bool = False) -> None:
    run = result.run
    header(out, run.execution)
    out.line(calls_line(result.calls, is_write))
    if result.faults:
        out.line(f"Faults injected: {', '.join(result.faults)}")
    if run.execution.status != "SUCCEEDED" and result.calls.writes == 0:
        out.line("Nothing was written.")
    if verbose:
        _by_step(out, result)
    if isinstance(run.outcome, Onboarded):
        _onboarded(out, result, run.outcome)
    else:
        outcome(run.outcome, out)
    for repair in result.repairs:
        out.line(f"  repair {repair.execution.name}: {repair.execution.status}")


def _by_step(out: Out, result: LocalRun) -> None:
    out.line("AWS calls by step (--verbose):")
    for step, calls in sorted(result.by_step.items()):
        listed = ", ".join(f"{k} x{n}" for k, n in sorted(calls.items()))
        out.line(f"  {step:<28} {listed}")


def _onboarded(out: Out, result: LocalRun, onboarded: Onboarded) -> None:
    for text in analyzer_lines(onboarded.analyzer):
        out.line(text)
    if onboarded.undecidable:
        out.line("Undecidable links (they depend on what only the real request carries; `local doctor` explains):")
        for check in onboarded.undecidable:
            out.line(f"  {check}")
    documents = result.documents
    if documents is not None:
        out.line()
        versions = f"{documents.versions} version(s)" if documents.versions else "? versions"
        out.line(
            f"Policy {onboarded.assume_policy_name} in the cluster manager account "
            f"{onboarded.cluster_manager_account} ({versions}), attached to {onboarded.node_role_name}:"
        )
        out.json(documents.assume_policy)
        where = f"{onboarded.access_role_name} in the S3 account {onboarded.s3_account}"
        if onboarded.access_key is not None:
            # The access key carries the external ID: nobody needs to read it, so it is not shown.
            out.line(f"Trust policy of {where} (external IDs redacted):")
            out.json(redact_external_ids(documents.trust))
        else:
            out.line(f"Trust policy of {where}:")
            out.json(documents.trust)
    out.line()
    if onboarded.access_key is not None:
        access_key_lines(out, onboarded)
    else:
        _what_to_type(out, result, onboarded)
    _proof(out, result)


def _what_to_type(out: Out, result: LocalRun, onboarded: Onboarded) -> None:
    out.line("In the Cluster Manager web UI (Credentials > Assume Role), create the access key with:")
    out.line(f"  Role ARN     {onboarded.role_arn}")
    out.line(f"  External ID  {result.external_id or '(not readable)'}")
    if onboarded.secret_name:
        out.line(f"               kept in Secrets Manager as {onboarded.secret_name}")


def _proof(out: Out, result: LocalRun) -> None:
    if result.proof is not None:
        out.line()
        out.line("Proof of access")
        for step in result.proof.steps:
            out.line(f"  {OK if step.ok else FAIL:<4} {step.claim}")
            out.line(f"       {step.how}" + (f": {step.detail}" if step.detail and not step.ok else ""))
        out.line("  " + ("access works end to end" if result.proof.ok else "ACCESS DOES NOT WORK"))


def render_many(out: Out, result: ManyRuns) -> None:
    out.line(f"{len(result.lines)} executions started at once, in {result.seconds:.2f} s:")
    for line in result.lines:
        failure = f"  {line.error}: {line.cause}" if line.error else ""
        out.line(
            f"  {line.status:<9} {line.label:<40} {line.name}  {line.transitions} states, {line.writes} writes{failure}"
        )
    out.line(calls_line(result.calls, is_write))
    if result.faults:
        out.line(f"Faults injected: {', '.join(result.faults)}")
    out.line()
    out.line("Trust policies afterwards:")
    for trust in result.trust:
        out.line(
            f"  {trust.role} ({trust.account}): {trust.statements} statements, "
            f"{trust.ours} ours granting {trust.external_ids} external IDs"
        )
