"""Options shared by several commands, declared once (with `envvar=` where AWS has a convention),
and `App`: where a command writes its result, as JSON or as a human report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from atc_xaccount_cli.errors import UsageError
from atc_xaccount_cli.paths import UnreadableFile, check_input_files
from atc_xaccount_cli.render.text import Out, progress_line, state_line

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """The invocation's output stream; `json` when `--json` was given."""

    out: TextIO
    json: bool = False

    @property
    def human(self) -> Out | None:
        return None if self.json else Out(self.out)

    def print_json(self, body: Any) -> None:
        json.dump(body, self.out, indent=2, default=str)
        self.out.write("\n")
        self.out.flush()

    def live(self) -> dict[str, Any]:
        """Callbacks that print each state as it finishes and what an open one waits for (human mode)."""
        out = self.human
        if out is None:
            return {}
        return {"on_state": lambda run: out.line(state_line(run)), "on_progress": lambda p: out.line(progress_line(p))}


def app(ctx: click.Context, as_json: bool) -> App:
    found = ctx.find_object(App)
    if found is None:
        raise click.UsageError("atc-xaccount: no output")  # main() always provides one
    found.json = as_json
    return found


def check_files(**files: Path | list[Path] | tuple[Path, ...] | None) -> None:
    """Every input file an invocation names, read before anything runs: `what=path(s)`."""
    listed: dict[str, list[Path]] = {}
    for what, value in files.items():
        paths = [value] if isinstance(value, Path) else list(value or [])
        listed[what.replace("_", " ")] = paths
    try:
        check_input_files(listed)
    except UnreadableFile as exc:
        raise UsageError(str(exc)) from exc


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")(f)


def aws_options(f: F) -> F:
    """The deployment and credentials: standard AWS conventions, and the stack from samconfig.toml."""
    from atc_xaccount_cli.aws.deployment import STACK_ENV

    f = json_option(f)
    f = click.option(
        "--automation-role-name",
        metavar="NAME",
        help="The bootstrap role's name in the target accounts (default: the stack's AutomationRoleName).",
    )(f)
    f = click.option(
        "--stack",
        envvar=STACK_ENV,
        metavar="NAME",
        help=f"The CloudFormation stack (default: ${STACK_ENV}, else samconfig.toml's stack_name; "
        "without a stack, the state machines are found by name).",
    )(f)
    f = click.option(
        "--region",
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
        metavar="REGION",
        help="The deployment's region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region).",
    )(f)
    return click.option(
        "--profile",
        envvar="AWS_PROFILE",
        metavar="PROFILE",
        help="AWS profile (default: $AWS_PROFILE, else the standard chain).",
    )(f)


def local_options(f: F) -> F:
    """The emulator's world, its template parameters, and the report's detail."""
    f = json_option(f)
    f = click.option(
        "--verbose",
        is_flag=True,
        help="Also list each step's AWS calls in the report, and let moto's log messages through (stderr).",
    )(f)
    f = click.option(
        "--param", "params", multiple=True, metavar="Name=Value", help="Override a template.yaml parameter."
    )(f)
    return click.option(
        "--world",
        type=click.Path(path_type=Path, dir_okay=True),
        metavar="WORLD_FILE",
        help="The IAM/S3 state of the accounts to start from (default: no accounts).",
    )(f)


def parameters(pairs: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects Name=Value, got {pair!r}")
        parsed[key] = value
    return parsed


def doctor_options(f: F) -> F:
    f = click.option(
        "--org",
        "orgs",
        multiple=True,
        metavar="ACCOUNT=o-ID|none",
        help="An account's AWS Organizations ID, for aws:PrincipalOrgID conditions (unknown otherwise).",
    )(f)
    f = click.option(
        "--transport",
        type=click.Choice(["https", "http", "unknown"]),
        default="https",
        show_default=True,
        help="How the nodes reach S3 (aws:SecureTransport).",
    )(f)
    f = click.option(
        "--session-seconds",
        type=int,
        default=3600,
        show_default=True,
        help="Session length Cluster Manager asks for (undocumented; AssumeRole's default).",
    )(f)
    f = click.option(
        "--path", "prefix", metavar="P", help="The access key's Path in Cluster Manager (default: the whole bucket)."
    )(f)
    f = click.option("--reveal", is_flag=True, help="Print the external ID (as `show` does).")(f)
    f = click.option(
        "--event",
        type=click.Path(path_type=Path, dir_okay=True),
        metavar="FILE",
        help="Check a cluster not registered yet, from its event.",
    )(f)
    return click.argument("cluster_id", metavar="[CLUSTER]", required=False)(f)


def doctor_request(
    cluster_id: str | None,
    event: Path | None,
    reveal: bool,
    prefix: str | None,
    session_seconds: int,
    transport: str,
    orgs: tuple[str, ...],
) -> tuple[Any, dict[str, Any] | None]:
    """(DoctorOptions, the event or None) from the command line; usage errors name the option."""
    from atc_xaccount_cli.doctor import DoctorOptions
    from atc_xaccount_cli.inputs import read_event

    if not cluster_id and not event:
        raise UsageError("doctor needs a CLUSTER or --event FILE")
    if session_seconds < 900:
        raise UsageError("--session-seconds: AssumeRole sessions last at least 900 seconds")
    organizations: dict[str, str | None] = {}
    for pair in orgs:
        account, sep, org = pair.partition("=")
        if not sep or not (account.isdigit() and len(account) == 12) or not (org == "none" or org.startswith("o-")):
            raise UsageError(f"--org expects ACCOUNT=o-ID or ACCOUNT=none, got {pair!r}")
        organizations[account] = None if org == "none" else org
    secure = {"https": True, "http": False, "unknown": None}[transport]
    options = DoctorOptions(prefix, session_seconds, secure, organizations, reveal)
    return options, read_event(event) if event else None
