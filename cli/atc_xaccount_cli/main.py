"""`atc-xaccount`: the operator and developer command line (DESIGN 3.4)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def project_root() -> Path:
    """The checkout holding template.yaml (the emulator deploys from it)."""
    here = Path(__file__).resolve()
    for candidate in [Path.cwd(), *here.parents]:
        if (candidate / "template.yaml").exists() and (candidate / "statemachine").is_dir():
            return candidate
    return Path.cwd()


def _parameters(pairs: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"atc-xaccount: --param expects Name=Value, got {pair!r}")
        parsed[key] = value
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atc-xaccount",
        description="Give ATC cluster nodes cross-account S3 access, and rehearse it on an embedded AWS emulator.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="run the real workflow on the embedded emulator (no AWS account)")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    run = local_commands.add_parser("run", help="run one event through the onboarding state machine")
    run.add_argument("event_file", type=Path, metavar="EVENT_FILE", help="EventBridge event (or just its detail)")
    run.add_argument("--world", type=Path, metavar="WORLD_FILE", help="IAM/S3 state of the accounts to start from")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="Name=Value",
        help="override a template.yaml parameter (repeatable)",
    )
    run.add_argument("--no-proof", action="store_true", help="skip the proof of access after success")
    run.add_argument("--verbose", action="store_true", help="show the steps' Powertools logs and moto's")
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    if args.command == "local" and args.local_command == "run":
        return _local_run(args, out)
    return EXIT_USAGE


def _local_run(args: argparse.Namespace, out: TextIO) -> int:
    from atc_xaccount_cli.local.run import UsageError, run_local
    from atc_xaccount_cli.render import Printer

    printer = Printer(out) if not args.json else None
    try:
        parameters = _parameters(args.param)
        if printer:
            printer.banner(args.event_file, args.world)
        report = run_local(
            project_root(),
            args.event_file,
            args.world,
            parameters=parameters,
            verbose=args.verbose,
            on_state=printer.state if printer else None,
            prove=not args.no_proof,
        )
    except (UsageError, SystemExit) as exc:
        print(f"atc-xaccount: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if printer:
        printer.report(report)
    else:
        json.dump(report.to_json(), out, indent=2, default=_json_default)
        out.write("\n")
    return EXIT_OK if report.result.status == "SUCCEEDED" else EXIT_FAILED


def _json_default(value: Any) -> str:
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
