"""`atc-xaccount local doctor`: a cluster's access chain, checked on the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from atc_xaccount.errors import AtcXaccountError
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.options import app, check_files, doctor_options, doctor_request, local_options, parameters
from atc_xaccount_cli.paths import project_root
from atc_xaccount_cli.render.doctor import render_doctor
from atc_xaccount_cli.render.operator import render_refused
from atc_xaccount_cli.results_ops import read_doctored, read_refused


@click.command("doctor", short_help="Check every link of a cluster's access chain.")
@doctor_options
@local_options
@click.pass_context
def command(
    ctx: click.Context,
    /,
    cluster_id: str | None,
    event: Path | None,
    world: Path | None,
    params: tuple[str, ...],
    verbose: bool,
    as_json: bool,
    **options: Any,
) -> int:
    """Evaluate every link of a cluster's access chain in a world, as `doctor` does against AWS.

    Exit 0 every link ok, 1 something broken, 3 only undecidable links left.
    """
    from atc_xaccount_cli.inputs import read_world
    from atc_xaccount_cli.local.doctor import run_doctor

    a = app(ctx, as_json)
    check_files(event_file=event, world_file=world)
    doctor_options_, parsed_event = doctor_request(cluster_id, event, **options)
    try:
        code, body = run_doctor(
            project_root(),
            cluster_id,
            read_world(world),
            event=parsed_event,
            options=doctor_options_,
            parameters=parameters(params),
            verbose=verbose,
        )
    except AtcXaccountError as exc:
        code, body = Exit.FAILED, exc.to_dict()
        if a.json:
            a.print_json(body)
        elif a.human:
            render_refused(a.human, read_refused("doctor", body))
        return code
    if a.json:
        a.print_json(body)
    elif a.human:
        render_doctor(a.human, read_doctored(body))
    return code
