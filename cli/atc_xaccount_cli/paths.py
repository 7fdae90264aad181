"""Files named on the command line: one clear line when a path is no readable file."""

from __future__ import annotations

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


#: The input-file options of every command: argparse destination -> what the file is.
INPUT_FILES = {
    "event_files": "event file",
    "event_file": "event file",
    "from_file": "registrations file",
    "world": "world file",
}


def check_input_files(values: dict[str, object]) -> None:
    """Read every input file an invocation names, before anything else runs."""
    for name, what in INPUT_FILES.items():
        given = values.get(name)
        paths = given if isinstance(given, list) else [given]
        for path in paths:
            if isinstance(path, Path):
                read_bytes(path, what)
