"""`atc-xaccount local run`: events (or a bulk file) through the real state machines on the emulator."""

from __future__ import annotations

from pathlib import Path

import click

from atc_xaccount_cli.errors import UsageError
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.local.faults import KINDS, FaultPlan, FaultSpecError
from atc_xaccount_cli.options import app, check_files, local_options, parameters
from atc_xaccount_cli.paths import project_root
from atc_xaccount_cli.render.local import banner, render_local, render_many
from atc_xaccount_cli.results import Bulked
from atc_xaccount_cli.results_local import LocalRun, ManyRuns, read_local

FAULTS_HELP = (
    "Inject AWS errors into the steps' calls: [Step/]service:Operation=kind[:probability[:limit]], "
    f"kind one of {', '.join(KINDS)} (repeatable). E.g. iam:writes=throttle:0.3, iam:*=consistency:1:2."
)


@click.command("run", short_help="Run events through the real state machines.")
@click.argument("event_files", nargs=-1, type=click.Path(path_type=Path), metavar="[EVENT_FILE]...")
@click.option(
    "--from-file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Bulk onboarding: a CSV or JSON-lines file of registrations (exit 5 when rows were rejected or failed).",
)
@click.option("--faults", multiple=True, metavar="SPEC", help=FAULTS_HELP)
@click.option("--seed", type=int, help="Random seed for --faults (reproducible runs).")
@click.option(
    "--deregister",
    is_flag=True,
    help="A detail-only EVENT_FILE is a deregistration (whole events are routed by their detail-type).",
)
@click.option("--no-proof", is_flag=True, help="Skip the proof of access after success.")
@click.option(
    "--aws-timing",
    is_flag=True,
    help="AWS's time: the template's propagation wait and each AWS call's typical seconds (docs/time.md).",
)
@local_options
@click.pass_context
def command(
    ctx: click.Context,
    /,
    event_files: tuple[Path, ...],
    from_file: Path | None,
    faults: tuple[str, ...],
    seed: int | None,
    deregister: bool,
    no_proof: bool,
    aws_timing: bool,
    world: Path | None,
    params: tuple[str, ...],
    verbose: bool,
    as_json: bool,
) -> int:
    """Run events through the real state machines on an embedded AWS emulator (no AWS account).

    Each EVENT_FILE is a whole EventBridge event (routed by template.yaml's rules) or just
    its detail (a manual execution). Several files start at once, on one world. Exit 0
    every execution SUCCEEDED, 1 one FAILED, 2 usage error.
    """
    from atc_xaccount_cli.inputs import check_parameters, read_event, read_world
    from atc_xaccount_cli.local.aws_time import AwsTiming
    from atc_xaccount_cli.local.run import OFFBOARD, ONBOARD, run_bulk, run_local
    from atc_xaccount_cli.local.template import TemplateError

    a = app(ctx, as_json)
    check_files(event_file=list(event_files), registrations_file=from_file, world_file=world)
    overrides = parameters(params)
    out = a.human
    live = a.live()
    # Every input is read before the banner: a bad file or parameter is its error alone.
    seeded = read_world(world)
    check_parameters(project_root(), overrides)
    try:
        if from_file is not None:
            if event_files:
                raise UsageError("give EVENT_FILEs or --from-file, not both")
            if faults:
                raise UsageError("--faults applies to EVENT_FILEs, not --from-file")
            if out:
                banner(out, [from_file], world, what="file")
            report = run_bulk(project_root(), from_file, seeded, parameters=overrides, verbose=verbose, **live)
        else:
            if not event_files:
                raise UsageError("give at least one EVENT_FILE (or --from-file)")
            for event_file in event_files:
                read_event(event_file)
            plan = FaultPlan(list(faults), seed) if faults else None
            if out:
                banner(out, list(event_files), world)
            report = run_local(
                project_root(),
                list(event_files),
                world,
                parameters=overrides,
                verbose=verbose,
                prove=not no_proof,
                detail_machine=OFFBOARD if deregister else ONBOARD,
                faults=plan,
                aws_timing=AwsTiming() if aws_timing else None,
                **(live if len(event_files) == 1 else {}),
            )
    except (FaultSpecError, TemplateError) as exc:
        raise UsageError(str(exc)) from exc
    body = report.to_json()
    result = read_local(body)
    if a.json:
        a.print_json(body)
    elif out is not None and isinstance(result, LocalRun):
        render_local(out, result, verbose=verbose)
    elif out is not None and isinstance(result, ManyRuns):
        render_many(out, result)
    if not report.succeeded:
        return Exit.FAILED
    if isinstance(result, LocalRun) and isinstance(result.run.outcome, Bulked) and not result.run.outcome.all_succeeded:
        return Exit.ROWS
    return Exit.OK
