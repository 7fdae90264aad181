"""Files named on the command line, and the project's own files (template.yaml, samconfig.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path


class UnreadableFile(ValueError):
    """A path given as an input file that is missing, a directory or not readable."""


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UnreadableFile(f"{what} {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise UnreadableFile(f"{what} {path}: is a directory, not a file") from exc
    except PermissionError as exc:
        raise UnreadableFile(f"{what} {path}: not readable (permission denied)") from exc
    except OSError as exc:
        raise UnreadableFile(f"{what} {path}: cannot be read ({exc.strerror or exc})") from exc


def check_input_files(files: dict[str, list[Path]]) -> None:
    """Read every input file an invocation names (what -> paths), before anything else runs."""
    for what, paths in files.items():
        for path in paths:
            read_bytes(path, what)


def project_root() -> Path:
    """The checkout holding template.yaml (the emulator deploys from it)."""
    here = Path(__file__).resolve()
    for candidate in [Path.cwd(), *here.parents]:
        if (candidate / "template.yaml").exists() and (candidate / "statemachine").is_dir():
            return candidate
    return Path.cwd()


def samconfig(root: Path | None = None) -> dict[str, object]:
    """samconfig.toml of the checkout, parsed ({} when absent or unreadable)."""
    path = (root or project_root()) / "samconfig.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _section(config: dict[str, object], *keys: str) -> dict[str, object]:
    node: object = config
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def samconfig_value(name: str, environment: str = "default", root: Path | None = None) -> str | None:
    """A parameter of a samconfig.toml environment: `deploy` first, then `global` (as SAM reads it)."""
    config = samconfig(root)
    for command in ("deploy", "global"):
        value = _section(config, environment, command, "parameters").get(name)
        if isinstance(value, str) and value:
            return value
    return None
