"""`atc-xaccount register`: onboard a cluster — start the workflow and follow it (or bulk, or via the bus)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from atc_xaccount_cli.aws import commands as ops
from atc_xaccount_cli.commands.shared import run_aws
from atc_xaccount_cli.errors import UsageError
from atc_xaccount_cli.inputs import read_event
from atc_xaccount_cli.options import app, aws_options, check_files
from atc_xaccount_cli.render.execution import render_run
from atc_xaccount_cli.render.operator import render_events_put
from atc_xaccount_cli.render.text import Out
from atc_xaccount_cli.results import read_run
from atc_xaccount_cli.results_ops import read_events_put

SOURCE = "atc.cluster-manager"


def follow_options(f: Any) -> Any:
    f = click.option(
        "--source", default=SOURCE, show_default=True, help="The event's source for --via events (if it has none)."
    )(f)
    f = click.option(
        "--via",
        type=click.Choice(["execution", "events"]),
        default="execution",
        show_default=True,
        help="Start the state machine directly, or put the event on the bus as Cluster Manager does.",
    )(f)
    f = click.option("--no-wait", is_flag=True, help="Start and return without following.")(f)
    return aws_options(f)


def render_execution(out: Out, body: dict[str, Any]) -> None:
    if body.get("via") == "events":
        render_events_put(out, read_events_put(body))
    else:
        render_run(out, read_run(body))


def start(
    ctx: click.Context, kind: str, event_file: Path, via: str, source: str, no_wait: bool, **connection: Any
) -> int:
    """register and deregister: one event, as an execution followed live or put on the bus."""
    a = app(ctx, connection.pop("as_json"))
    check_files(event_file=event_file)
    event = read_event(event_file)
    live = a.live()

    def operation(session: Any, deployment: Any) -> tuple[int, dict[str, Any]]:
        if via == "events":
            return ops.put_on_bus(session, deployment, event, kind=kind, source=source)
        if a.human and not no_wait:  # credentials and stack found: the execution's states follow
            a.human.line("Execution")
        return ops.register(session, deployment, event, kind=kind, wait=not no_wait, **live)

    return run_aws(a, "register" if kind == "onboard" else "deregister", connection, operation, render_execution)


@click.command("register", short_help="Onboard a cluster: start the workflow and follow it.")
@click.argument("event_file", type=click.Path(path_type=Path), metavar="EVENT_FILE", required=False)
@click.option(
    "--from-file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Bulk: a CSV or JSON-lines file of registrations (exit 5 when rows were rejected or failed).",
)
@follow_options
@click.pass_context
def command(ctx: click.Context, /, event_file: Path | None, from_file: Path | None, **options: Any) -> int:
    """Onboard a cluster: start the workflow for EVENT_FILE (an EventBridge event or its detail) and follow it.

    The execution is named after the event and the cluster's registry generation: a
    duplicate of the same request shows as that execution, a registration after a
    deregistration is a new one.
    """
    if from_file is not None:
        if event_file is not None:
            raise UsageError("give an EVENT_FILE or --from-file, not both")
        return _bulk(ctx, from_file, **options)
    if event_file is None:
        raise UsageError("register needs an EVENT_FILE or --from-file")
    return start(ctx, "onboard", event_file, **options)


def _bulk(ctx: click.Context, from_file: Path, via: str, source: str, no_wait: bool, **connection: Any) -> int:
    a = app(ctx, connection.pop("as_json"))
    check_files(registrations_file=from_file)
    if via != "execution":
        raise UsageError("--from-file runs the bulk workflow; --via events does not apply")
    live = a.live()

    def operation(session: Any, deployment: Any) -> tuple[int, dict[str, Any]]:
        if a.human and not no_wait:
            a.human.line("Execution")
        return ops.register_bulk(session, deployment, from_file, wait=not no_wait, **live)

    return run_aws(a, "register", connection, operation, lambda out, body: render_run(out, read_run(body)))
