"""Shared helpers for the CLI tests: the real sample files and an in-process `atc-xaccount`."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from atc_xaccount_cli.local.dispatch import is_write
from atc_xaccount_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SAMPLE_EVENT = EVENTS / "cluster-registered.json"
INVALID_EVENT = EVENTS / "cluster-registered-invalid.json"
SAMPLE_WORLD = EVENTS / "sample-world.json"
CM, S3 = "111111111111", "222222222222"


def cli(*argv: str | Path) -> tuple[int, str]:
    """Run `atc-xaccount ARGV` in-process: (exit code, stdout)."""
    out = StringIO()
    code = main([str(a) for a in argv], out=out)
    return code, out.getvalue()


def cli_json(*argv: str | Path) -> tuple[int, dict[str, Any]]:
    code, text = cli("local", "run", *argv, "--json")
    return code, json.loads(text)


def iam_writes(report: dict[str, Any]) -> dict[str, int]:
    return {k: n for k, n in report["calls"]["by_operation"].items() if k.startswith("iam:") and is_write(k)}
