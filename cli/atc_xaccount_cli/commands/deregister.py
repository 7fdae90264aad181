"""`atc-xaccount deregister`: offboard a cluster — start the workflow and follow it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from atc_xaccount_cli.commands.register import follow_options, start


@click.command("deregister", short_help="Offboard a cluster: start the workflow and follow it.")
@click.argument("event_file", type=click.Path(path_type=Path), metavar="EVENT_FILE")
@follow_options
@click.pass_context
def command(ctx: click.Context, /, event_file: Path, **options: Any) -> int:
    """Offboard a cluster: remove exactly its grant and policy resource, everywhere it was placed.

    EVENT_FILE is a Cluster Deregistered event or its detail (clusterId and both accounts).
    """
    return start(ctx, "offboard", event_file, **options)
