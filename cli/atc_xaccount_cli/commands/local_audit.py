"""`atc-xaccount local audit`: the drift audit over the world's registered clusters, on the emulator."""

from __future__ import annotations

from pathlib import Path

import click

from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.options import app, check_files, local_options, parameters
from atc_xaccount_cli.paths import project_root
from atc_xaccount_cli.render.local import banner, render_local
from atc_xaccount_cli.results import Audited
from atc_xaccount_cli.results_local import LocalRun, read_local


@click.command("audit", short_help="Run the drift audit over the world's registry.")
@click.option("--repair", is_flag=True, help="Re-run onboarding for drifted clusters (RepairDrift=true).")
@local_options
@click.pass_context
def command(
    ctx: click.Context, repair: bool, world: Path | None, params: tuple[str, ...], verbose: bool, as_json: bool
) -> int:
    """Run the audit state machine once over the world's registry.

    Exit 0 nothing drifted, 4 drift found, 1 the audit (or a cluster's check) failed.
    """
    from atc_xaccount_cli.inputs import check_parameters, read_world
    from atc_xaccount_cli.local.run import run_audit

    a = app(ctx, as_json)
    check_files(world_file=world)
    overrides = parameters(params)
    if repair:
        overrides["RepairDrift"] = "true"
    seeded = read_world(world)
    check_parameters(project_root(), overrides)
    if a.human:
        banner(a.human, [], world)
    report = run_audit(project_root(), seeded, parameters=overrides, verbose=verbose, **a.live())
    body = report.to_json()
    result = read_local(body)
    if a.json:
        a.print_json(body)
    elif a.human and isinstance(result, LocalRun):
        render_local(a.human, result, verbose=verbose)
    audited = result.run.outcome if isinstance(result, LocalRun) else None
    if not report.executions[0].result.status == "SUCCEEDED" or (isinstance(audited, Audited) and audited.failed):
        return Exit.FAILED
    if isinstance(audited, Audited) and audited.drifted:
        return Exit.DRIFT
    return Exit.OK
