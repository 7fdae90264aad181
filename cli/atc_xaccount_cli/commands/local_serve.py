"""`atc-xaccount local serve`: the embedded emulator as a local AWS endpoint for the operator commands."""

from __future__ import annotations

import errno
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import click

from atc_xaccount_cli.errors import UsageError
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.options import app, check_files, local_options, parameters
from atc_xaccount_cli.paths import project_root
from atc_xaccount_cli.render.text import Out

DEFAULT_PORT = 4700
COMMANDS = "register, deregister, status, show, plan, snapshot, audit, doctor, rotate-external-id"


def _free(host: str, port: int) -> None:
    """Refuse a port that is taken before the server thread would die on it."""
    if port == 0:
        return
    probe = socket.socket()
    try:
        probe.bind((host, port))
    except OSError as exc:
        taken = exc.errno == errno.EADDRINUSE
        reason = "is in use" if taken else f"cannot be bound ({exc.strerror})"
        raise UsageError(f"--port {port} {reason}: pass --port N (0 picks a free one)") from exc
    finally:
        probe.close()


def wait_for_stop(stop: threading.Event | None = None) -> None:
    """Block until Ctrl-C or SIGTERM (or `stop`, for callers in-process)."""
    stop = stop or threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        stop.wait()
        return
    # SIGINT too: a shell starts a background job with SIGINT ignored, which Python inherits.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command("serve", short_help="Serve the emulator as a local AWS endpoint.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port (0 picks a free one).")
@click.option(
    "--stack",
    metavar="NAME",
    help="The stack name the deployment is published under (default: what --stack defaults to, "
    "$ATC_XACCOUNT_STACK or samconfig.toml's stack_name).",
)
@click.option("--env-file", type=click.Path(path_type=Path), help="Also write the export lines here (for `. FILE`).")
@local_options
@click.pass_context
def command(
    ctx: click.Context,
    /,
    host: str,
    port: int,
    stack: str | None,
    env_file: Path | None,
    world: Path | None,
    params: tuple[str, ...],
    verbose: bool,
    as_json: bool,
) -> int:
    """Serve the emulator over HTTP, with the stack deployed and the world seeded, until Ctrl-C.

    It prints what to export (endpoint, region, credentials); then every operator command
    runs against it unchanged, as against AWS.
    """
    from atc_xaccount_cli.aws.deployment import default_stack
    from atc_xaccount_cli.inputs import read_world
    from atc_xaccount_cli.local.serve import serving

    a = app(ctx, as_json)
    check_files(world_file=world)
    seeded = read_world(world)
    overrides = parameters(params)
    _free(host, port)
    name = stack or default_stack() or "atc-xaccount"
    with serving(
        project_root(), seeded, host=host, port=port, stack=name, parameters=overrides, verbose=verbose
    ) as served:
        exports = served.exports()
        if env_file is not None:
            env_file.write_text("\n".join(exports) + "\n", encoding="utf-8")
        if a.json:
            a.print_json(
                {"endpoint": served.endpoint, "region": served.region, "stack": served.stack, "exports": exports}
            )
        else:
            _banner(Out(a.out), served, world, exports)
        wait_for_stop(ctx.meta.get("atc_xaccount.stop"))
    if a.human:
        a.human.line("stopped: the emulator and everything in it are gone")
    return Exit.OK


def _banner(out: Out, served: Any, world: Path | None, exports: list[str]) -> None:
    out.line(f"atc-xaccount local serve: the embedded emulator at {served.endpoint}, with the stack")
    out.line(f"{served.stack} deployed and the world {world or '(empty)'} seeded. In another shell, run")
    out.line(f"these, then any operator command ({COMMANDS}):")
    out.line()
    for line in exports:
        out.line(line)
    out.line()
    out.line("Serving until Ctrl-C.")
