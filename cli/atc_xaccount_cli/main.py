"""`atc-xaccount`: the operator and developer command line (DESIGN 3.4)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from atc_xaccount_cli.paths import UnreadableFile, check_input_files

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
    run = local_commands.add_parser(
        "run", help="run events through the state machines (several files: started at once, on one world)"
    )
    run.add_argument(
        "event_files", type=Path, nargs="*", metavar="EVENT_FILE", help="EventBridge event (or just its detail)"
    )
    run.add_argument(
        "--from-file", type=Path, metavar="FILE", help="bulk onboarding: a CSV or JSON-lines file of registrations"
    )
    _common_local_options(run)
    run.add_argument(
        "--faults",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject AWS errors into the steps' calls: [Step/]service:Operation=kind[:probability[:limit]], "
        "kind one of throttle, conflict, propagation, denied, fail, limit, consistency, stale (repeatable)",
    )
    run.add_argument(
        "--aws-timing",
        action="store_true",
        help="AWS's time: the template's propagation wait and each AWS call's typical seconds (docs/time.md)",
    )
    run.add_argument("--seed", type=int, help="random seed for --faults (reproducible runs)")
    run.add_argument(
        "--deregister",
        action="store_true",
        help="a detail-only EVENT_FILE is a deregistration (whole events are routed by their detail-type)",
    )
    run.add_argument("--no-proof", action="store_true", help="skip the proof of access after success")
    _aws_commands(commands)
    local_doctor = local_commands.add_parser("doctor", help="check every link of a cluster's access chain")
    _doctor_options(local_doctor)
    _common_local_options(local_doctor)
    audit = local_commands.add_parser("audit", help="run the drift audit over the world's registered clusters")
    _common_local_options(audit)
    audit.add_argument("--repair", action="store_true", help="re-run onboarding for drifted clusters")
    return parser


def _aws_commands(commands: Any) -> None:
    """Commands against a deployed stack, with the standard AWS credential chain."""

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
        parser.add_argument("--region", help="AWS region of the deployment")
        parser.add_argument("--stack", help="CloudFormation stack name (default: find the state machines by name)")
        parser.add_argument("--automation-role-name", help="the bootstrap role's name in target accounts")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        return parser

    for name, text in (
        ("register", "onboard a cluster: start the workflow and follow it"),
        ("deregister", "offboard a cluster: start the workflow and follow it"),
    ):
        parser = add(name, text)
        parser.add_argument("event_file", type=Path, nargs="?", metavar="EVENT_FILE", help="the event (or its detail)")
        if name == "register":
            parser.add_argument(
                "--from-file", type=Path, metavar="FILE", help="bulk: a CSV or JSON-lines file of registrations"
            )
        parser.add_argument("--no-wait", action="store_true", help="start and return without following")
        parser.add_argument(
            "--via",
            choices=("execution", "events"),
            default="execution",
            help="start the state machine directly (default) or put the event on the bus",
        )
        parser.add_argument("--source", default="atc.cluster-manager", help="event source for --via events")
    add("status", "show an execution").add_argument("execution", help="execution ARN or name")
    add("show", "show a cluster's access and reveal its external ID").add_argument("cluster_id", metavar="CLUSTER")
    add("plan", "what an onboarding would change (read-only)").add_argument(
        "event_file", type=Path, metavar="EVENT_FILE"
    )
    add("audit", "run the drift audit now and follow it")
    snap = add("snapshot", "read accounts' IAM state into a world file for `local run --world`")
    snap.add_argument("accounts", nargs="+", metavar="ACCOUNT")
    snap.add_argument("--out", type=Path, help="write the world here (default: stdout)")
    snap.add_argument("--direct", action="store_true", help="use these credentials in each account, no assume-role")
    _doctor_options(add("doctor", "check every link of a cluster's access chain (read only) and name the broken one"))
    rot = add("rotate-external-id", "add a new external ID beside the old; --finish removes the old")
    rot.add_argument("cluster_id", metavar="CLUSTER")
    rot.add_argument("--finish", action="store_true", help="drop the old ID once Cluster Manager uses the new one")


def _doctor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cluster_id", nargs="?", metavar="CLUSTER", help="a registered cluster (or give --event)")
    parser.add_argument("--event", type=Path, metavar="FILE", help="check a cluster not registered yet, from its event")
    parser.add_argument("--reveal", action="store_true", help="print the external ID (as `show` does)")
    parser.add_argument("--path", help="the access key's Path in Cluster Manager (default: the whole bucket)")
    parser.add_argument(
        "--session-seconds",
        type=int,
        default=3600,
        help="session length Cluster Manager asks for (undocumented; default 3600, AssumeRole's default)",
    )
    parser.add_argument(
        "--transport",
        choices=("https", "http", "unknown"),
        default="https",
        help="how the nodes reach S3 (aws:SecureTransport); default https",
    )
    parser.add_argument(
        "--org",
        action="append",
        default=[],
        metavar="ACCOUNT=o-ID|none",
        help="an account's AWS Organizations ID, for aws:PrincipalOrgID conditions (unknown otherwise)",
    )


def _doctor_request(args: argparse.Namespace) -> tuple[Any, dict[str, Any] | None]:
    """(DoctorOptions, the event or None) from the command line; usage errors name the option."""
    from atc_xaccount_cli.doctor import DoctorOptions
    from atc_xaccount_cli.local.run import UsageError, read_event

    if not args.cluster_id and not args.event:
        raise UsageError("doctor needs a CLUSTER or --event FILE")
    if args.session_seconds < 900:
        raise UsageError("--session-seconds: AssumeRole sessions last at least 900 seconds")
    organizations: dict[str, str | None] = {}
    for pair in args.org:
        account, sep, org = pair.partition("=")
        if not sep or not (account.isdigit() and len(account) == 12) or not (org == "none" or org.startswith("o-")):
            raise UsageError(f"--org expects ACCOUNT=o-ID or ACCOUNT=none, got {pair!r}")
        organizations[account] = None if org == "none" else org
    transport = {"https": True, "http": False, "unknown": None}[args.transport]
    options = DoctorOptions(args.path, args.session_seconds, transport, organizations, args.reveal)
    return options, read_event(args.event) if args.event else None


def _common_local_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", type=Path, metavar="WORLD_FILE", help="IAM/S3 state of the accounts to start from")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument(
        "--param", action="append", default=[], metavar="Name=Value", help="override a template.yaml parameter"
    )
    parser.add_argument("--verbose", action="store_true", help="show the steps' Powertools logs and moto's")


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    try:
        check_input_files(vars(args))
    except UnreadableFile as exc:
        print(f"atc-xaccount: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "local":
        return _local(args, out)
    return _aws(args, out)


def _aws(args: argparse.Namespace, out: TextIO) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from atc_xaccount.errors import AtcXaccountError
    from atc_xaccount_cli.aws import commands
    from atc_xaccount_cli.aws.deployment import DeploymentNotFound, discover
    from atc_xaccount_cli.doctor import ClusterUnknown
    from atc_xaccount_cli.local.run import UsageError
    from atc_xaccount_cli.render import Printer

    printer = None if args.json else Printer(out)
    on_state = printer.state if printer else None
    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        deployment = discover(session, args.stack, args.automation_role_name)
        command = args.command
        if command == "register" and args.from_file:
            code, body = commands.register_bulk(
                session, deployment, args.from_file, wait=not args.no_wait, on_state=on_state
            )
        elif command in ("register", "deregister"):
            if args.event_file is None:
                raise UsageError(
                    f"{command} needs an EVENT_FILE" + (" or --from-file" if command == "register" else "")
                )
            event = commands.read_event(args.event_file)
            code, body = commands.register(
                session,
                deployment,
                event,
                kind="onboard" if command == "register" else "offboard",
                wait=not args.no_wait,
                via=args.via,
                source=args.source,
                on_state=on_state,
            )
        elif command == "status":
            code, body = commands.status(session, deployment, args.execution)
        elif command == "show":
            code, body = commands.show(session, deployment, args.cluster_id)
        elif command == "plan":
            code, body = commands.plan_event(session, deployment, commands.read_event(args.event_file))
        elif command == "audit":
            code, body = commands.audit(session, deployment, on_state=on_state)
        elif command == "doctor":
            options, event = _doctor_request(args)
            code, body = commands.doctor(session, deployment, args.cluster_id, event, options)
        elif command == "snapshot":
            body = commands.snapshot(session, deployment, args.accounts, direct=args.direct)
            code = EXIT_OK
            if args.out:
                args.out.write_text(json.dumps(body, indent=2) + "\n")
                body = {"written": str(args.out), "accounts": sorted(body["accounts"])}
        else:
            code, body = commands.rotate_external_id(session, deployment, args.cluster_id, finish=args.finish)
    except (UsageError, DeploymentNotFound, ClusterUnknown) as exc:
        print(f"atc-xaccount: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AtcXaccountError as exc:
        code, body = EXIT_FAILED, exc.to_dict()
    except (ClientError, BotoCoreError) as exc:
        print(f"atc-xaccount: AWS refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        json.dump(body, out, indent=2, default=_json_default)
        out.write("\n")
    else:
        commands.print_result(out, args.command, body)
    return code


def _local(args: argparse.Namespace, out: TextIO) -> int:
    from atc_xaccount_cli.local.aws_time import AwsTiming
    from atc_xaccount_cli.local.faults import FaultPlan, FaultSpecError
    from atc_xaccount_cli.local.run import (
        OFFBOARD,
        ONBOARD,
        UsageError,
        read_world,
        run_audit,
        run_bulk,
        run_local,
    )
    from atc_xaccount_cli.local.template import TemplateError
    from atc_xaccount_cli.render import Printer

    if args.local_command == "doctor":
        return _local_doctor(args, out)
    printer = Printer(out) if not args.json else None
    try:
        parameters = _parameters(args.param)
        on_state = printer.state if printer else None
        if args.local_command == "audit":
            if args.repair:
                parameters["RepairDrift"] = "true"
            if printer:
                printer.banner([], args.world)
            report = run_audit(
                project_root(), read_world(args.world), parameters=parameters, verbose=args.verbose, on_state=on_state
            )
        elif args.from_file:
            if args.event_files:
                raise UsageError("give EVENT_FILEs or --from-file, not both")
            if printer:
                printer.banner([args.from_file], args.world)
            report = run_bulk(
                project_root(),
                args.from_file,
                read_world(args.world),
                parameters=parameters,
                verbose=args.verbose,
                on_state=on_state,
            )
        else:
            if not args.event_files:
                raise UsageError("give at least one EVENT_FILE (or --from-file)")
            faults = FaultPlan(args.faults, args.seed) if args.faults else None
            if printer:
                printer.banner(args.event_files, args.world)
            report = run_local(
                project_root(),
                args.event_files,
                args.world,
                parameters=parameters,
                verbose=args.verbose,
                on_state=on_state,
                prove=not args.no_proof,
                detail_machine=OFFBOARD if args.deregister else ONBOARD,
                faults=faults,
                aws_timing=AwsTiming() if args.aws_timing else None,
            )
    except (UsageError, FaultSpecError, TemplateError, SystemExit) as exc:
        print(f"atc-xaccount: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if printer:
        printer.report(report)
    else:
        json.dump(report.to_json(), out, indent=2, default=_json_default)
        out.write("\n")
    return EXIT_OK if report.succeeded else EXIT_FAILED


def _local_doctor(args: argparse.Namespace, out: TextIO) -> int:
    from atc_xaccount.errors import AtcXaccountError
    from atc_xaccount_cli.doctor import ClusterUnknown, print_doctor
    from atc_xaccount_cli.local.doctor import run_doctor
    from atc_xaccount_cli.local.run import UsageError, read_world
    from atc_xaccount_cli.local.template import TemplateError

    try:
        options, event = _doctor_request(args)
        code, body = run_doctor(
            project_root(),
            args.cluster_id,
            read_world(args.world),
            event=event,
            options=options,
            parameters=_parameters(args.param),
            verbose=args.verbose,
        )
    except (UsageError, TemplateError, ClusterUnknown, SystemExit) as exc:
        print(f"atc-xaccount: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AtcXaccountError as exc:
        code, body = EXIT_FAILED, exc.to_dict()
    if args.json:
        json.dump(body, out, indent=2, default=_json_default)
        out.write("\n")
    elif "links" in body:
        print_doctor(out, body)
    else:
        out.write(f"atc-xaccount doctor: {body.get('error')}: {body.get('message')}\n")
    return code


def _json_default(value: Any) -> str:
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
