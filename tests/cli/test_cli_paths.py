"""A path that is no readable file, given to any command that reads one: one line, exit 2."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.main import main

EXIT_USAGE = Exit.USAGE

ROOT = Path(__file__).resolve().parents[2]
EVENT = str(ROOT / "events" / "cluster-registered.json")

#: Every command option that reads a file, with the placeholder `{}` for the bad path.
COMMANDS = [
    (["local", "run", "{}"], "event file"),
    (["local", "run", EVENT, "{}"], "event file"),
    (["local", "run", EVENT, "--world", "{}"], "world file"),
    (["local", "run", "--from-file", "{}"], "registrations file"),
    (["local", "audit", "--world", "{}"], "world file"),
    (["register", "{}"], "event file"),
    (["register", "--from-file", "{}"], "registrations file"),
    (["deregister", "{}"], "event file"),
    (["plan", "{}"], "event file"),
]


def bad_paths(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    unreadable = tmp_path / "unreadable.json"
    unreadable.write_text("{}")
    unreadable.chmod(0)
    return {
        "directory": (tmp_path, "is a directory, not a file"),
        "missing": (tmp_path / "missing.json", "no such file"),
        "unreadable": (unreadable, "not readable (permission denied)"),
    }


@pytest.mark.parametrize(("argv", "what"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
@pytest.mark.parametrize("kind", ["directory", "missing", "unreadable"])
def test_a_bad_path_prints_one_line_and_exits_2(tmp_path, capsys, argv, what, kind):
    path, reason = bad_paths(tmp_path)[kind]
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("running as root: permission bits cannot make a file unreadable to root (CI runs as root)")
    out = io.StringIO()
    code = main([a.replace("{}", str(path)) for a in argv], out=out)

    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"atc-xaccount: {what} {path}: {reason}\n"
    assert out.getvalue() == ""
