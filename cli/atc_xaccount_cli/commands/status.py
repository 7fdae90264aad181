"""`atc-xaccount status`: an execution and its states."""

from __future__ import annotations

from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.options import app, aws_options
from atc_xaccount_cli.render.execution import render_run
from atc_xaccount_cli.results import read_run


@click.command("status", short_help="An execution and its states.")
@click.argument("execution")
@aws_options
@click.pass_context
def command(ctx: click.Context, /, execution: str, **connection: Any) -> int:
    """Show an execution (its ARN, or the name `register` printed) with every state it went through."""
    a = app(ctx, connection.pop("as_json"))
    return run_aws(
        a,
        "status",
        connection,
        lambda session, deployment: ops.status(session, deployment, execution),
        lambda out, body: render_run(out, read_run(body), with_states=True),
    )
