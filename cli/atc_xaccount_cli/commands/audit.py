"""`atc-xaccount audit`: run the drift audit now and follow it."""

from __future__ import annotations

from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.options import app, aws_options
from atc_xaccount_cli.render.execution import render_run
from atc_xaccount_cli.results import read_run


@click.command("audit", short_help="Run the drift audit now and follow it.")
@aws_options
@click.pass_context
def command(ctx: click.Context, /, **connection: Any) -> int:
    """Run the drift audit over every registered cluster now (the schedule runs it too).

    Exit 4 when it found drift, 1 when it could not check a cluster.
    """
    a = app(ctx, connection.pop("as_json"))
    live = a.live()

    def operation(session: Any, deployment: Any) -> tuple[int, dict[str, Any]]:
        if a.human:  # credentials and stack found: the execution's states follow
            a.human.line("Execution")
        return ops.audit(session, deployment, **live)

    return run_aws(
        a,
        "audit",
        connection,
        operation,
        lambda out, body: render_run(out, read_run(body)),
    )
