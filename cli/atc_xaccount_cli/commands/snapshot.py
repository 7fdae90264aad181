"""`atc-xaccount snapshot`: the accounts' IAM state as a world file, to rehearse with `local run --world`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.errors import UsageError
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.options import app, aws_options
from atc_xaccount_cli.render.operator import render_snapshot
from atc_xaccount_cli.results_ops import read_snapshot


@click.command("snapshot", short_help="Accounts' IAM state as a world file for local run.")
@click.argument("accounts", nargs=-1, required=True, metavar="ACCOUNT...")
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Write the world here (default: stdout).")
@click.option("--direct", is_flag=True, help="Use these credentials in each account, no assume-role.")
@aws_options
@click.pass_context
def command(
    ctx: click.Context, /, accounts: tuple[str, ...], out_file: Path | None, direct: bool, **connection: Any
) -> int:
    """Read the atc-* roles and policies of each ACCOUNT (12 digits) into a world file."""
    a = app(ctx, connection.pop("as_json"))
    for account in accounts:
        if not (account.isdigit() and len(account) == 12):
            raise UsageError(f"ACCOUNT must be 12 digits, got {account!r}")

    def operation(session: Any, deployment: Any) -> tuple[int, dict[str, Any]]:
        world = ops.snapshot(session, deployment, list(accounts), direct=direct)
        if out_file is None:
            return Exit.OK, world
        try:
            out_file.write_text(json.dumps(world, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {out_file}: cannot be written ({exc.strerror or exc})") from exc
        return Exit.OK, {"written": str(out_file), "accounts": sorted(world["accounts"])}

    return run_aws(a, "snapshot", connection, operation, lambda out, body: render_snapshot(out, read_snapshot(body)))
