"""Reading the files a command names: events, worlds; a file that is no good is a UsageError naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atc_xaccount_cli import paths
from atc_xaccount_cli.errors import UsageError


def read_bytes(path: Path, what: str) -> bytes:
    """A file named on the command line; a path that is no readable file is a usage error."""
    try:
        return paths.read_bytes(path, what)
    except paths.UnreadableFile as exc:
        raise UsageError(str(exc)) from exc


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(read_bytes(path, what).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def read_event(path: Path) -> dict[str, Any]:
    event = read_json(path, "event file")
    if not isinstance(event, dict):
        raise UsageError(f"event file {path}: must hold a JSON object (an EventBridge event or its detail)")
    return event


def read_world(path: Path | None) -> dict[str, Any]:
    from atc_xaccount_cli.local.world import WorldError, validate_world

    if path is None:
        return {"accounts": {}}
    world = read_json(path, "world file")
    try:
        validate_world(world)
    except WorldError as exc:
        raise UsageError(f"world file {path}: {exc}") from exc
    return world  # type: ignore[no-any-return]


def check_parameters(root: Path, overrides: dict[str, str]) -> None:
    """`--param NAME=VALUE` names a parameter of template.yaml (else a usage error, before anything runs)."""
    from atc_xaccount_cli.local.template import SamApp, TemplateError

    try:
        SamApp.load(root, overrides)
    except TemplateError as exc:
        raise UsageError(str(exc)) from exc
