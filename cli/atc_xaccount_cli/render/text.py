"""The pieces every human report is made of: lines, state lines, progress lines, JSON blocks."""

from __future__ import annotations

import json
from typing import Any, TextIO

from atc_xaccount_cli.executions import Progress, StateRun
from atc_xaccount_cli.results import Calls, StateLine

OK, FAIL, CAUGHT = "ok", "FAIL", "caught"
MARK_WIDTH, NAME_WIDTH = 7, 26


class Out:
    """A text stream written line by line and flushed, so a live view shows as it happens."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def json(self, doc: Any, indent: str = "    ") -> None:
        for text in json.dumps(doc, indent=2).splitlines():
            self.line(indent + text)


def state_line(state: StateLine | StateRun) -> str:
    """`  ok      Name      12.0 ms  retried x2`: one line per state, as it finishes (x is a multiplication sign)."""
    ms = state.ms if isinstance(state, StateLine) else state.millis
    mark = FAIL if state.failed else CAUGHT if state.caught else OK
    millis = f"{ms:8.1f} ms" if ms is not None else ""
    notes = []
    if state.retries:
        notes.append(f"retried ×{state.retries}")  # noqa: RUF001 - the multiplication sign is meant
    if state.caught:
        notes.append(f"{state.caught} caught")
    text = f"  {mark:<{MARK_WIDTH}} {state.name:<{NAME_WIDTH}}{millis}"
    return (text + "  " + ", ".join(notes)) if notes else text.rstrip()


def progress_line(progress: Progress) -> str:
    """`  ...     PublishReady retrying (2/6) in 4 s after ServiceFailure`: a state that is not done yet."""
    if progress.kind == "waiting":
        seconds = f" {_seconds(progress.seconds)}" if progress.seconds else ""
        return f"  {'...':<{MARK_WIDTH}} {progress.state} waiting{seconds}"
    up_to = "up to " if progress.jitter else ""
    when = f" in {up_to}{_seconds(progress.seconds)}" if progress.seconds is not None else ""
    return f"  {'...':<{MARK_WIDTH}} {progress.state} retrying ({progress.attempt}/{progress.max_attempts}){when}" + (
        f" after {progress.error}" if progress.error else ""
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f} s" if value >= 1 or value == 0 else f"{value:.1f} s"


def calls_line(calls: Calls, is_write: Any) -> str:
    writes = {k: n for k, n in calls.by_operation.items() if is_write(k)}
    detail = (": " + ", ".join(f"{k} x{n}" for k, n in writes.items())) if writes else ""
    return f"AWS calls by the steps: {calls.total} ({calls.writes} writes{detail})"


def analyzer_lines(analyzer: dict[str, str]) -> list[str]:
    """One line when Access Analyzer is not there (the emulator), else one per document."""
    if not analyzer:
        return []
    if all(status.startswith("unavailable") for status in analyzer.values()):
        return [
            "IAM Access Analyzer: unavailable here; the offline lint ran instead "
            "(atc-xaccount's own rules, with parliament's finding codes)"
        ]
    return [f"IAM Access Analyzer on the new {document} document: {status}" for document, status in analyzer.items()]
