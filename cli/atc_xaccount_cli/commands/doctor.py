"""`atc-xaccount doctor`: every link of a cluster's access chain, the first broken one and its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.options import app, aws_options, check_files, doctor_options, doctor_request
from atc_xaccount_cli.render.doctor import render_doctor
from atc_xaccount_cli.results_ops import read_doctored


@click.command("doctor", short_help="Check every link of a cluster's access chain.")
@doctor_options
@aws_options
@click.pass_context
def command(ctx: click.Context, /, cluster_id: str | None, event: Path | None, **options: Any) -> int:
    """Evaluate every link an access key needs, read only, through the automation roles.

    Exit 0 every link ok, 1 something broken, 3 only undecidable links left.
    """
    connection = {k: options.pop(k) for k in ("profile", "region", "stack", "automation_role_name")}
    a = app(ctx, options.pop("as_json"))
    check_files(event_file=event)
    doctor_options_, parsed_event = doctor_request(cluster_id, event, **options)
    return run_aws(
        a,
        "doctor",
        connection,
        lambda session, deployment: ops.doctor(session, deployment, cluster_id, parsed_event, doctor_options_),
        lambda out, body: render_doctor(out, read_doctored(body)),
    )
