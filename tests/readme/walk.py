"""The README's commands as steps: which code blocks are commands, and what each expects.

Every ```sh (bash, shell, console) block of README.md is a list of commands, run in order
by tests/readme/test_readme_walk.py — unless an HTML comment right before it says
otherwise, so that later additions are walked too:

    <!-- walk: skip REASON -->   an example, not commands to run (e.g. it needs AWS)
    <!-- walk: serve -->         its one command starts a server that the next blocks use
    <!-- walk: stop -->          (on its own) the server started by `serve` stops here
    <!-- walk: output -->        before a ```text block: what the command just before printed,
                                 line by line in order (other lines may come between; `…`
                                 stands for whatever a line has there; ids and hashes vary)

A command expects exit 0 unless its comment says `exit N` (`... # exit 1: why`).
Continuation lines (`\\`) are joined; blank lines and comment lines are skipped.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

WALKED = {"sh", "bash", "shell", "console"}
_DIRECTIVE = re.compile(r"^\s*<!--\s*walk:\s*(?P<what>skip|serve|stop|output)\b(?P<why>.*?)-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
_EXPECT = re.compile(r"#.*?\bexit (\d+)")


@dataclass(frozen=True)
class Step:
    kind: str  # "run" | "serve" | "stop" | "output"
    argv: tuple[str, ...]
    expect: int
    line: int
    text: str


class WalkError(ValueError):
    """The README breaks the walk's conventions (named with its line)."""


def steps(readme: str) -> list[Step]:
    lines = readme.splitlines()
    found: list[Step] = []
    directive: str | None = None
    i = 0
    while i < len(lines):
        marker = _DIRECTIVE.match(lines[i])
        fence = _FENCE.match(lines[i])
        if marker and marker.group("what") == "stop":
            found.append(Step("stop", (), 0, i + 1, lines[i].strip()))
        elif marker:
            directive = marker.group("what")
        elif fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise WalkError(f"README.md:{i + 1}: code block never closed")
            if directive == "output":
                if fence.group("lang") != "text":
                    raise WalkError(f"README.md:{i + 1}: `walk: output` goes before a ```text block")
                found.append(Step("output", (), 0, i + 2, "\n".join(lines[i + 1 : end])))
            elif fence.group("lang") in WALKED and directive != "skip":
                block = _commands(lines[i + 1 : end], i + 2)
                if directive == "serve":
                    if len(block) != 1:
                        raise WalkError(f"README.md:{i + 1}: a `walk: serve` block holds exactly one command")
                    block = [Step("serve", block[0].argv, 0, block[0].line, block[0].text)]
                found.extend(block)
            directive = None
            i = end
        elif lines[i].strip():
            directive = None
        i += 1
    return found


def _commands(block: list[str], first_line: int) -> list[Step]:
    found: list[Step] = []
    pending, start = "", first_line
    for offset, raw in enumerate(block):
        text = raw.strip()
        if not pending:
            start = first_line + offset
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text, pending = pending + text, ""
        if not text or text.startswith("#"):
            continue
        expect = _EXPECT.search(text)
        argv = tuple(shlex.split(text, comments=True))
        found.append(Step("run", argv, int(expect.group(1)) if expect else 0, start, text))
    return found


#: What differs from run to run in a printed report: execution names, KMS key ids, hashes.
_VARYING = [
    (re.compile(r"local-[0-9a-f]{12}"), r"local-[0-9a-f]{12}"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), r"[0-9a-f-]{36}"),
]


def line_pattern(line: str) -> re.Pattern[str]:
    """A README output line as a pattern: `…` is anything, varying ids match any id."""
    pattern = ""
    for piece in line.rstrip().split("…"):
        escaped, at = "", 0
        for found in sorted((m for v, _ in _VARYING for m in v.finditer(piece)), key=lambda m: m.start()):
            if found.start() >= at:
                general = next(g for v, g in _VARYING if v.fullmatch(found.group()))
                escaped += re.escape(piece[at : found.start()]) + general
                at = found.end()
        pattern += escaped + re.escape(piece[at:]) + ".*?"
    return re.compile("^" + pattern.removesuffix(".*?") + ("" if line.rstrip().endswith("…") else r"\s*$"))


def missing_lines(expected: str, printed: str) -> list[str]:
    """The README lines the printed output lacks, matched in order."""
    lines = printed.splitlines()
    at, missing = 0, []
    for wanted in (w for w in expected.splitlines() if w.strip()):
        pattern = line_pattern(wanted)
        found = next((k for k in range(at, len(lines)) if pattern.match(lines[k].rstrip())), None)
        if found is None:
            missing.append(wanted)
        else:
            at = found + 1
    return missing
