"""The human report of a local run: states as they finish, documents, what to type, proof."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from atc_xaccount_cli.local.dispatch import is_write

if TYPE_CHECKING:
    from atc_xaccount_cli.local.engine import StateRun
    from atc_xaccount_cli.local.run import ExecutionReport, RunReport

OK, FAIL = "ok  ", "FAIL"


class Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def banner(self, event_files: list[Path], world_file: Path | None) -> None:
        self.line("atc-xaccount local: the real state machines on an embedded AWS emulator (moto);")
        self.line("no AWS account is used.")
        for path in event_files:
            self.line(f"  event  {path}")
        self.line(f"  world  {world_file or '(empty: no accounts seeded)'}")
        self.line()
        if len(event_files) <= 1:
            self.line("Execution")

    def state(self, run: StateRun) -> None:
        mark = FAIL if run.failed else OK
        millis = f"{run.millis:8.1f} ms" if run.millis is not None else ""
        self.line(f"  {mark} {run.name:<26}{millis}")

    def report(self, report: RunReport) -> None:
        execution = report.executions[0]
        if execution.machine == "BulkStateMachine":
            self._summary(execution)
            self._calls(report.calls, report.faults)
            self._bulk(execution, report.seconds)
            return
        if execution.machine == "AuditStateMachine":
            self._summary(execution)
            self._calls(report.calls, report.faults)
            self._audit(execution)
            for repair in report.executions[1:]:
                self.line(f"  repair {repair.result.name}: {repair.result.status}")
            return
        if len(report.executions) > 1:
            self._many(report)
            return
        self._summary(execution)
        self._calls(report.calls, report.faults)
        if execution.result.status == "SUCCEEDED" and execution.machine == "OnboardStateMachine":
            self._analyzer(execution)
            self._documents(execution, report.world)
            self._operator(execution)
            self._proof(execution)
        elif execution.result.status == "SUCCEEDED":
            self._revoked(execution, report.world)

    def _summary(self, execution: ExecutionReport) -> None:
        result = execution.result
        self.line()
        self.line(f"{result.status}  ({execution.rule}; execution {result.name}, {result.transitions} states)")
        if result.status != "SUCCEEDED":
            self.line(f"  error  {result.error}")
            self.line(f"  cause  {execution.cause_message}")
        for event in execution.events:
            self.line(f"Published on the bus: {event['detail-type']}")

    def _calls(self, calls: dict[str, Any], faults: list[dict[str, Any]]) -> None:
        writes = {k: n for k, n in calls["by_operation"].items() if is_write(k)}
        self.line(
            f"AWS calls by the steps: {calls['total']} ({calls['writes']} writes"
            + (": " + ", ".join(f"{k} x{n}" for k, n in writes.items()) if writes else "")
            + ")"
        )
        if faults:
            self.line(f"Faults injected: {len(faults)} (" + ", ".join(sorted({f["call"] for f in faults})) + ")")

    def _many(self, report: RunReport) -> None:
        self.line(f"{len(report.executions)} executions started at once, in {report.seconds:.2f} s:")
        for execution in report.executions:
            result = execution.result
            self.line(
                f"  {result.status:<9} {execution.label:<40} {result.name}  {result.transitions} states, "
                f"{execution.calls['writes']} writes"
                + (f"  {result.error}: {execution.cause_message}" if result.error else "")
            )
        self._calls(report.calls, report.faults)
        self.line()
        self.line("Trust policies afterwards:")
        for account, state in sorted(report.world["accounts"].items()):
            for name, role in sorted((state.get("roles") or {}).items()):
                statements = role["trust"].get("Statement", [])
                ours = [s for s in statements if str(s.get("Sid", "")).startswith("AtcXaccount")]
                if ours:
                    ids = sum(len(_as_list(s["Condition"]["StringEquals"]["sts:ExternalId"])) for s in ours)
                    self.line(
                        f"  {name} ({account}): {len(statements)} statements, "
                        f"{len(ours)} ours granting {ids} external IDs"
                    )

    def _analyzer(self, execution: ExecutionReport) -> None:
        checked = (execution.result.output.get("preflight") or {}).get("accessAnalyzer") or {}
        for document, status in checked.items():
            self.line(f"IAM Access Analyzer on the new {document} document: {status}")
        if any(str(s).startswith("unavailable") for s in checked.values()):
            self.line("  (the offline lint ran instead: atc-xaccount's own rules, with parliament's finding codes)")

    def _documents(self, execution: ExecutionReport, world: dict[str, Any]) -> None:
        request = execution.result.output["request"]
        accounts = world["accounts"]
        cm, s3 = request["clusterManagerAccountId"], request["s3AccountId"]
        policy = accounts.get(cm, {}).get("policies", {}).get(request["assumePolicyName"], {})
        self.line()
        self.line(
            f"Policy {request['assumePolicyName']} in the cluster manager account {cm} "
            f"({policy.get('versions', '?')} version(s)), attached to {request['nodeRoleName']}:"
        )
        self._json(policy.get("document"))
        role = accounts.get(s3, {}).get("roles", {}).get(request["accessRoleName"], {})
        trust = role.get("trust")
        if execution.result.output.get("accessKey"):
            # The access key carries the external ID: nobody needs to read it, so it is not shown.
            from atc_xaccount.redact import redact_external_ids

            trust = redact_external_ids(trust)
            self.line(f"Trust policy of {request['accessRoleName']} in the S3 account {s3} (external IDs redacted):")
        else:
            self.line(f"Trust policy of {request['accessRoleName']} in the S3 account {s3}:")
        self._json(trust)

    def _operator(self, execution: ExecutionReport) -> None:
        output = execution.result.output
        self.line()
        key = output.get("accessKey")
        if key:
            self.line(f"The access key was created through the cluster's Node API ({key['url']}): nothing to type.")
            self.line(
                f"  Access key   {key['id']} ({key['state']}, {key['action']}); its secret in {key['secretName']}"
            )
            self.line(f"  Role ARN     {output['roleArn']}")
            self.line(
                f"  External ID  in the key only; kept in Secrets Manager as {output['verify']['externalIdSecret']}"
            )
            return
        self.line("In the Cluster Manager web UI (Credentials > Assume Role), create the access key with:")
        self.line(f"  Role ARN     {output['roleArn']}")
        self.line(f"  External ID  {execution.external_id or '(not readable)'}")
        self.line(f"               kept in Secrets Manager as {output['verify']['externalIdSecret']}")

    def _proof(self, execution: ExecutionReport) -> None:
        if execution.proof is None:
            return
        self.line()
        self.line("Proof of access")
        for step in execution.proof.steps:
            self.line(f"  {OK if step.ok else FAIL} {step.claim}")
            self.line(f"       {step.how}" + (f": {step.detail}" if step.detail and not step.ok else ""))
        self.line("  " + ("access works end to end" if execution.proof.ok else "ACCESS DOES NOT WORK"))

    def _revoked(self, execution: ExecutionReport, world: dict[str, Any]) -> None:
        output = execution.result.output or {}
        self.line()
        if output.get("nothingToDo"):
            self.line(f"Nothing to do: cluster {output.get('clusterId')} is {output.get('reason')}.")
            return
        for name, change in (output.get("changes") or {}).items():
            self.line(
                f"  {name:<14} {change.get('action', change.get('state', ''))} {change.get('reason', '')}".rstrip()
            )

    def _bulk(self, execution: ExecutionReport, seconds: float) -> None:
        report = (execution.result.output or {}).get("report") or {}
        self.line()
        counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted((report.get("counts") or {}).items()))
        self.line(f"{report.get('total', 0)} rows in {seconds:.1f} s: {counts}; report {report.get('report')}")
        for row in report.get("problems", []):
            self.line(f"  line {row['line']:>4}  {row['status']:<9} {row.get('clusterId') or ''}  {row['cause']}")
        if report.get("problemsOmitted"):
            self.line(f"  ... and {report['problemsOmitted']} more in the report")

    def _audit(self, execution: ExecutionReport) -> None:
        clusters = (execution.result.output or {}).get("clusters") or []
        self.line()
        self.line(f"Audited {len(clusters)} registered cluster(s):")
        for cluster in clusters:
            if not cluster["drift"]:
                self.line(f"  {OK} {cluster['clusterId']}: in sync")
                continue
            repaired = " (repair started)" if cluster.get("repaired") else ""
            self.line(f"  {FAIL} {cluster['clusterId']}: drifted{repaired}")
            for drift in cluster["drift"]:
                self.line(f"       {drift['kind']} in {drift['account']}: {drift['detail']}")

    def _json(self, doc: Any) -> None:
        for text in json.dumps(doc, indent=2).splitlines():
            self.line("    " + text)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
