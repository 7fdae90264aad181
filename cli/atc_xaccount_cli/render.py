"""The human report of a local run: states as they finish, documents, what to type, proof."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from atc_xaccount_cli.local.engine import StateRun
    from atc_xaccount_cli.local.run import RunReport

OK, FAIL = "ok  ", "FAIL"


class Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def banner(self, event_file: Path, world_file: Path | None) -> None:
        self.line("atc-xaccount local run: the real state machine on an embedded AWS emulator (moto);")
        self.line("no AWS account is used.")
        self.line(f"  event  {event_file}")
        self.line(f"  world  {world_file or '(empty: no accounts seeded)'}")
        self.line()
        self.line("Execution")

    def state(self, run: StateRun) -> None:
        mark = FAIL if run.failed else OK
        millis = f"{run.millis:8.1f} ms" if run.millis is not None else ""
        self.line(f"  {mark} {run.name:<22}{millis}")

    def report(self, report: RunReport) -> None:
        result = report.result
        calls = report.calls
        self.line()
        self.line(f"{result.status}  ({report.rule}; execution {result.name}, {result.transitions} states)")
        if result.status != "SUCCEEDED":
            self.line(f"  error  {result.error}")
            self.line(f"  cause  {report.cause_message}")
        writes = {k: n for k, n in calls["by_operation"].items() if _is_write(k)}
        self.line(
            f"AWS calls by the steps: {calls['total']} ({calls['writes']} writes"
            + (": " + ", ".join(f"{k} x{n}" for k, n in writes.items()) if writes else "")
            + ")"
        )
        for event in report.events:
            self.line(f"Published on the bus: {event['detail-type']}")
        if result.status == "SUCCEEDED":
            self._documents(report)
            self._operator(report)
            self._proof(report)

    def _documents(self, report: RunReport) -> None:
        request = report.result.output["request"]
        accounts = report.world["accounts"]
        cm, s3 = request["clusterManagerAccountId"], request["s3AccountId"]
        policy = accounts.get(cm, {}).get("policies", {}).get(request["assumePolicyName"], {})
        self.line()
        self.line(
            f"Policy {request['assumePolicyName']} in the cluster manager account {cm} "
            f"({policy.get('versions', '?')} version(s)), attached to {request['nodeRoleName']}:"
        )
        self._json(policy.get("document"))
        role = accounts.get(s3, {}).get("roles", {}).get(request["accessRoleName"], {})
        self.line(f"Trust policy of {request['accessRoleName']} in the S3 account {s3}:")
        self._json(role.get("trust"))

    def _operator(self, report: RunReport) -> None:
        verify = report.result.output["verify"]
        self.line()
        self.line("In the Cluster Manager web UI (Credentials > Assume Role), create the access key with:")
        self.line(f"  Role ARN     {verify['roleArn']}")
        self.line(f"  External ID  {report.external_id or '(not readable)'}")
        self.line(f"               kept in Secrets Manager as {verify['externalIdSecret']}")

    def _proof(self, report: RunReport) -> None:
        if report.proof is None:
            return
        self.line()
        self.line("Proof of access")
        for step in report.proof.steps:
            self.line(f"  {OK if step.ok else FAIL} {step.claim}")
            self.line(f"       {step.how}" + (f": {step.detail}" if step.detail and not step.ok else ""))
        self.line("  " + ("access works end to end" if report.proof.ok else "ACCESS DOES NOT WORK"))

    def _json(self, doc: Any) -> None:
        for text in json.dumps(doc, indent=2).splitlines():
            self.line("    " + text)


def _is_write(key: str) -> bool:
    from atc_xaccount_cli.local.dispatch import is_write

    return is_write(key)
