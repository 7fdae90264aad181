"""The README's commands, run in order as a newcomer would, in one process (tests/readme/walk.py).

`atc-xaccount ...` runs in-process (main(), the console script's entry) against the
emulator, or against the `local serve` the README starts (a real subprocess, over HTTP);
`python3 -c` runs as a subprocess; `export`/`unset` change the environment of what
follows. Each command: the exit status the README documents (0 unless its comment says
`exit N`), no traceback, one JSON object when `--json` is given. The read-only operator
commands the README shows in human mode run with `--json` too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from atc_xaccount_cli.main import main
from tests.readme.walk import Step, missing_lines, steps

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCRIPT = Path(sys.executable).parent / "atc-xaccount"
#: Operator commands that only read: the walk runs them with --json too.
READ_ONLY = {"plan", "show", "status", "doctor"}
SERVE_PORT = 4700  # the default the README's exports show


class Walk:
    def __init__(self, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cwd = cwd
        self.env = monkeypatch
        self.server: subprocess.Popen[str] | None = None
        self.printed: dict[str, str] = {}
        self.port = SERVE_PORT
        self.lines: queue.Queue[str] = queue.Queue()
        self.last_out = ""

    def fail(self, step: Step, why: str, output: str = "") -> None:
        tail = "\n".join(output.strip().splitlines()[-25:])
        pytest.fail(f"README.md:{step.line}: {step.text}\n{why}\n--- output ---\n{tail}", pytrace=False)

    def run(self, step: Step) -> None:
        argv = list(step.argv)
        head = argv[0]
        if head == "atc-xaccount":
            self.cli(step, argv[1:])
        elif head in ("python3", "python"):
            done = subprocess.run(
                [sys.executable, *argv[1:]], cwd=self.cwd, capture_output=True, text=True, check=False
            )
            if done.returncode != step.expect:
                self.fail(step, f"exit {done.returncode}, the README says {step.expect}", done.stdout + done.stderr)
        elif head == "export":
            for pair in argv[1:]:
                name, _, value = pair.partition("=")
                value = value.replace(f"127.0.0.1:{SERVE_PORT}", f"127.0.0.1:{self.port}")
                if name in self.printed and self.printed[name] != value:
                    self.fail(step, f"`local serve` printed {name}={self.printed[name]}, the README exports {value}")
                self.env.setenv(name, value)
        elif head == "unset":
            for name in argv[1:]:
                self.env.delenv(name, raising=False)
        elif head in (".", "source") and argv[1:] == [".venv/bin/activate"]:
            assert (ROOT / ".venv" / "bin" / "activate").exists(), "make run / make test create .venv"
        else:
            self.fail(step, f"the walk does not run `{head}`: mark its block `<!-- walk: skip REASON -->`")

    def cli(self, step: Step, argv: list[str]) -> None:
        target = None
        if ">" in argv:
            at = argv.index(">")
            argv, target = argv[:at], argv[at + 1]
        code, out, err = self.invoke(argv)
        self.check(step, argv, code, out, err)
        self.last_out = out
        if target is not None:
            (self.cwd / target).write_text(out, encoding="utf-8")
        if argv and argv[0] in READ_ONLY and "--json" not in argv:
            self.check(step, [*argv, "--json"], *self.invoke([*argv, "--json"]))

    def invoke(self, argv: list[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(argv, out=out)
        return code, out.getvalue(), err.getvalue()

    def check(self, step: Step, argv: list[str], code: int, out: str, err: str) -> None:
        if "Traceback" in out + err:
            self.fail(step, "a traceback", out + err)
        if code != step.expect:
            self.fail(
                step, f"`atc-xaccount {shlex.join(argv)}` exited {code}, the README says {step.expect}", out + err
            )
        if "--json" in argv:
            try:
                json.loads(out)
            except json.JSONDecodeError:
                self.fail(step, "--json printed no JSON object", out)

    def output(self, step: Step) -> None:
        missing = missing_lines(step.text, self.last_out)
        if missing:
            self.fail(step, "the command before this block does not print:\n" + "\n".join(missing), self.last_out)

    # --- the `local serve` session ---------------------------------------------------------

    def serve(self, step: Step) -> None:
        argv = list(step.argv[1:])
        if "--port" in argv:
            self.fail(step, "the walk picks a free port for the default one the exports show: drop `--port`")
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.server = subprocess.Popen(
            [str(SCRIPT), *argv, "--port", str(self.port)],
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.server,), daemon=True).start()
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=180)
            except queue.Empty:
                self.fail(step, "`local serve` did not say it serves within 180 s", "\n".join(seen))
            seen.append(line)
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                self.printed[name] = shlex.split(value)[0]
            if line.startswith("Serving until Ctrl-C") or self.server.poll() is not None:
                break
        if self.server.poll() is not None:
            self.fail(step, f"`local serve` exited {self.server.returncode}", "\n".join(seen))

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line.rstrip("\n"))

    def stop(self, step: Step) -> None:
        if self.server is None:
            self.fail(step, "`walk: stop` without a `walk: serve` before it")
            return
        self.server.send_signal(signal.SIGINT)  # Ctrl-C
        code = self.server.wait(timeout=120)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        if code != 0 or not any(line.startswith("stopped") for line in rest):
            self.fail(step, f"`local serve` did not stop on Ctrl-C cleanly (exit {code})", "\n".join(rest))
        self.server = None

    def close(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait()


@pytest.fixture
def walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Walk]:
    """A scratch directory where the README's relative paths (events/...) resolve."""
    (tmp_path / "events").symlink_to(ROOT / "events")
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    walker = Walk(tmp_path, monkeypatch)
    try:
        yield walker
    finally:
        walker.close()


def test_every_command_of_the_readme_runs_as_documented(walk):
    found = steps(README.read_text(encoding="utf-8"))
    assert any(s.kind == "serve" for s in found), "the README walks a `local serve` session"
    for step in found:
        getattr(walk, step.kind)(step)
    assert walk.server is None, "every `walk: serve` is followed by a `walk: stop`"
