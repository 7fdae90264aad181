"""`atc-xaccount rotate-external-id`: a new external ID beside the old, then (--finish) the old one goes."""

from __future__ import annotations

from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.options import app, aws_options
from atc_xaccount_cli.render.operator import render_rotation
from atc_xaccount_cli.results_ops import read_rotation


@click.command("rotate-external-id", short_help="A new external ID beside the old (--finish: drop the old).")
@click.argument("cluster_id", metavar="CLUSTER")
@click.option("--finish", is_flag=True, help="Drop the old ID once Cluster Manager uses the new one.")
@aws_options
@click.pass_context
def command(ctx: click.Context, /, cluster_id: str, finish: bool, **connection: Any) -> int:
    """Add a new external ID beside the old one (no downtime); after updating the access key in
    Cluster Manager, `--finish` removes the old one."""
    a = app(ctx, connection.pop("as_json"))
    return run_aws(
        a,
        "rotate-external-id",
        connection,
        lambda session, deployment: ops.rotate_external_id(session, deployment, cluster_id, finish=finish),
        lambda out, body: render_rotation(out, read_rotation(body)),
    )
