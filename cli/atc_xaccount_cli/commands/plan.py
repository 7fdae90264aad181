"""`atc-xaccount plan`: what an onboarding would change, computed by the same steps with writes off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.inputs import read_event
from atc_xaccount_cli.options import app, aws_options, check_files
from atc_xaccount_cli.render.operator import render_plan
from atc_xaccount_cli.results_ops import read_plan


@click.command("plan", short_help="What an onboarding would change (read only).")
@click.argument("event_file", type=click.Path(path_type=Path), metavar="EVENT_FILE")
@aws_options
@click.pass_context
def command(ctx: click.Context, /, event_file: Path, **connection: Any) -> int:
    """What onboarding EVENT_FILE would change (read only): each change, or "up to date".

    A request preflight refuses (a missing role, a quota, a modified statement) is exit 1,
    with the error and its cause.
    """
    a = app(ctx, connection.pop("as_json"))
    check_files(event_file=event_file)
    event = read_event(event_file)
    return run_aws(
        a,
        "plan",
        connection,
        lambda session, deployment: ops.plan_event(session, deployment, event),
        lambda out, body: render_plan(out, read_plan(body)),
    )
