"""`atc-xaccount show`: a cluster's registration, role ARN and external ID."""

from __future__ import annotations

from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.options import app, aws_options
from atc_xaccount_cli.render.operator import render_shown
from atc_xaccount_cli.results_ops import read_shown


@click.command("show", short_help="A cluster's registration, role ARN and external ID.")
@click.argument("cluster_id", metavar="CLUSTER")
@aws_options
@click.pass_context
def command(ctx: click.Context, /, cluster_id: str, **connection: Any) -> int:
    """Show a cluster: its state, the role ARN and the external ID to type into Cluster Manager.

    The external ID is read from its secret (with the operator's permission); exit 1 when
    the cluster is not registered.
    """
    a = app(ctx, connection.pop("as_json"))
    return run_aws(
        a,
        "show",
        connection,
        lambda session, deployment: ops.show(session, deployment, cluster_id),
        lambda out, body: render_shown(out, read_shown(body)),
    )
