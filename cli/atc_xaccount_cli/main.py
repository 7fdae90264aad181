"""`atc-xaccount`: the operator and developer command line (DESIGN 3.4), on click.

One command per module (commands/); each returns its exit status (exitcodes.py, one
table). Errors the user can fix are one line on stderr (`atc-xaccount: ...`), never a
traceback; with `--json` the same error is also printed as a JSON object on stdout.
"""

from __future__ import annotations

import contextlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TextIO

import click

from atc_xaccount_cli.commands import (
    audit,
    deregister,
    doctor,
    local_audit,
    local_doctor,
    local_run,
    local_serve,
    plan,
    register,
    rotate,
    show,
    snapshot,
    status,
)
from atc_xaccount_cli.errors import CliError
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.options import App

PROG = "atc-xaccount"


def _version() -> str:
    try:
        return version("atc-xaccount")
    except PackageNotFoundError:  # running from a checkout without an install
        return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), "--version", prog_name=PROG, message="%(prog)s %(version)s")
def cli() -> None:
    """Give ATC cluster nodes cross-account S3 access, and rehearse it on an embedded AWS emulator.

    The operator commands talk to a deployment (the standard AWS credential chain,
    --profile, --region, --stack); `local ...` runs the same workflows with no AWS account.
    """


@cli.group("local", short_help="The same workflows on the embedded emulator (no AWS account).")
def local() -> None:
    """Run the real workflows on the embedded emulator (no AWS account, no Docker)."""


for module in (register, deregister, status, show, plan, audit, snapshot, doctor, rotate):
    cli.add_command(module.command)
for module in (local_run, local_doctor, local_audit, local_serve):
    local.add_command(module.command)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command; its exit status (never raises, never prints a traceback for a known error)."""
    stream = out or sys.stdout
    args = list(sys.argv[1:] if argv is None else argv)
    app = App(stream)
    try:
        if stream is sys.stdout:
            return _run(app, args)
        with contextlib.redirect_stdout(stream):  # --help and --version print with click.echo
            return _run(app, args)
    except BrokenPipeError:
        return _output_closed(stream)


def _run(app: App, args: list[str]) -> int:
    try:
        with cli.make_context(PROG, args, obj=app) as ctx:
            code = cli.invoke(ctx)
        return int(code) if code is not None else Exit.OK
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return Exit.USAGE if isinstance(exc, click.UsageError) else int(exc.exit_code)
    except click.Abort:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        if app.json:
            app.print_json({"error": type(exc).__name__, "message": str(exc)})
        print(f"{PROG}: {exc}", file=sys.stderr)
        return int(exc.exit_code)


def _output_closed(stream: TextIO) -> int:
    """The reader went away (`| head`): stop quietly; stdout's final flush must not raise either."""
    if stream is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return Exit.PIPE


if __name__ == "__main__":
    sys.exit(main())
