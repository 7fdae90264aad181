"""What the operator commands share: connecting to the deployment, and printing a result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atc_xaccount.errors import AtcXaccountError
from atc_xaccount_cli.aws.deployment import Deployment, discover
from atc_xaccount_cli.aws.session import open_session, translated
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.options import App
from atc_xaccount_cli.render.operator import render_refused
from atc_xaccount_cli.render.text import Out
from atc_xaccount_cli.results_ops import read_refused

Operation = Callable[[Any, Deployment], tuple[int, dict[str, Any]]]
Renderer = Callable[[Out, dict[str, Any]], None]


def run_aws(
    app: App,
    command: str,
    connection: dict[str, str | None],
    operation: Operation,
    render: Renderer,
) -> int:
    """Connect, run `operation(session, deployment)`, print its result; a refusal by the layer is exit 1."""
    with translated():
        session = open_session(connection.get("profile"), connection.get("region"))
        deployment = discover(session, connection.get("stack"), connection.get("automation_role_name"))
        try:
            code, body = operation(session, deployment)
        except AtcXaccountError as exc:
            code, body = Exit.FAILED, exc.to_dict()
            if app.json:
                app.print_json(body)
            else:
                render_refused(Out(app.out), read_refused(command, body))
            return code
    if app.json:
        app.print_json(body)
    else:
        render(Out(app.out), body)
    return code
