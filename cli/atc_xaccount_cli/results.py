"""Typed results of the workflow commands, read from the JSON the commands print with `--json`.

Every renderer (render/) takes one of these, never a raw dict: what a workflow's output
must hold for its human report is read here, once, and a missing field is a
`ResultShapeError` naming it — not a traceback in the middle of a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atc_xaccount_cli.errors import ResultShapeError

ONBOARD, OFFBOARD, AUDIT, BULK = "OnboardStateMachine", "OffboardStateMachine", "AuditStateMachine", "BulkStateMachine"
ROTATE = "RotateStateMachine"


class Fields:
    """Read a JSON object by dotted path; what is missing or of the wrong type is named."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ResultShapeError(f"{where}: expected an object, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.where = where

    def _get(self, path: str, kinds: tuple[type, ...], optional: bool) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node or node[part] is None:
                if optional:
                    return None
                raise ResultShapeError(f"{self.where}: no {path}")
            node = node[part]
        if not isinstance(node, kinds):
            raise ResultShapeError(f"{self.where}: {path} is {type(node).__name__}, not {kinds[0].__name__}")
        return node

    def text(self, path: str) -> str:
        return str(self._get(path, (str,), False))

    def opt_text(self, path: str) -> str | None:
        value = self._get(path, (str, int, float), True)
        return None if value is None else str(value)

    def number(self, path: str, default: int | None = None) -> int:
        value = self._get(path, (int,), default is not None)
        return default if value is None and default is not None else int(value)

    def flag(self, path: str) -> bool:
        return bool(self._get(path, (bool,), True))

    def obj(self, path: str) -> Fields:
        return Fields(self._get(path, (dict,), False), f"{self.where}.{path}")

    def opt_obj(self, path: str) -> Fields | None:
        value = self._get(path, (dict,), True)
        return None if value is None else Fields(value, f"{self.where}.{path}")

    def items(self, path: str) -> list[Any]:
        return list(self._get(path, (list,), True) or [])

    def objs(self, path: str) -> list[Fields]:
        return [Fields(item, f"{self.where}.{path}[{i}]") for i, item in enumerate(self.items(path))]

    def raw(self, path: str) -> Any:
        return self._get(path, (object,), True)


@dataclass(frozen=True)
class StateLine:
    name: str
    ms: float
    failed: bool = False
    retries: int = 0
    caught: str | None = None


@dataclass(frozen=True)
class Calls:
    total: int
    writes: int
    by_operation: dict[str, int]

    @classmethod
    def read(cls, f: Fields) -> Calls:
        ops = f.obj("by_operation").data
        return cls(f.number("total"), f.number("writes"), {str(k): int(v) for k, v in ops.items()})


@dataclass(frozen=True)
class Execution:
    """What every execution report starts with."""

    name: str
    status: str
    machine: str
    error: str | None
    cause: str | None
    transitions: int
    states: list[StateLine]
    rule: str | None = None
    duplicate: bool = False
    published: list[str] = field(default_factory=list)
    calls: Calls | None = None
    label: str | None = None


@dataclass(frozen=True)
class AccessKey:
    """The access key onboarding created through the cluster's Node API (nothing to type then)."""

    key_id: str
    state: str
    action: str
    secret_name: str
    url: str


@dataclass(frozen=True)
class Onboarded:
    cluster_id: str
    cluster_manager_account: str
    s3_account: str
    role_arn: str
    secret_name: str | None
    node_role_name: str
    access_role_name: str
    assume_policy_name: str
    analyzer: dict[str, str]
    undecidable: list[str]
    access_key: AccessKey | None = None


@dataclass(frozen=True)
class RevokedChange:
    name: str
    action: str
    detail: str


@dataclass(frozen=True)
class Revoked:
    cluster_id: str
    nothing_to_do: bool
    reason: str | None
    changes: list[RevokedChange]


@dataclass(frozen=True)
class Undone:
    change: str
    result: str


@dataclass(frozen=True)
class Failed:
    cluster_id: str | None
    error: str
    cause: str
    #: What Compensate undid (None: it did not run, nothing to undo).
    undone: list[Undone] | None = None


@dataclass(frozen=True)
class Drift:
    kind: str
    account: str
    detail: str


@dataclass(frozen=True)
class AuditedCluster:
    cluster_id: str
    drift: list[Drift]
    repaired: bool
    failure: str | None


@dataclass(frozen=True)
class Audited:
    audited: int
    in_sync: int
    drifted: int
    failed: int
    clusters: list[AuditedCluster]
    omitted: int


@dataclass(frozen=True)
class BulkRow:
    line: int
    status: str
    cluster_id: str | None
    cause: str | None


@dataclass(frozen=True)
class Bulked:
    total: int
    counts: dict[str, int]
    report: str | None
    problems: list[BulkRow]
    omitted: int

    @property
    def all_succeeded(self) -> bool:
        return set(self.counts) <= {"SUCCEEDED"}


@dataclass(frozen=True)
class Rotated:
    """A phase of an external ID rotation (its output never holds an ID)."""

    cluster_id: str
    phase: str
    trust: str
    #: finish: the clusters that still use the previous ID (it stayed granted for them).
    kept_for: list[str]
    #: With a Node API: the access key the workflow moved to the new ID and browsed through.
    access_key: str | None = None
    #: A start that finished by itself (the key moved through the Node API).
    completed: bool = False


@dataclass(frozen=True)
class StillRunning:
    """An execution not finished yet (`register --no-wait`, `status` of a running one)."""


Outcome = Onboarded | Revoked | Failed | Audited | Bulked | Rotated | StillRunning


@dataclass(frozen=True)
class Run:
    """One execution and what it came to."""

    execution: Execution
    outcome: Outcome


def read_execution(body: dict[str, Any]) -> Execution:
    f = Fields(body, "result")
    states = [
        StateLine(
            s.text("name"), float(s.raw("ms") or 0), s.flag("failed"), s.number("retries", 0), s.opt_text("caught")
        )
        for s in f.objs("states")
    ]
    calls = f.opt_obj("calls")
    return Execution(
        name=f.text("execution"),
        status=f.text("status"),
        machine=f.opt_text("stateMachine") or "",
        error=f.opt_text("error"),
        cause=f.opt_text("cause"),
        transitions=f.number("stateTransitions", 0),
        states=states,
        rule=f.opt_text("rule"),
        duplicate=f.flag("duplicate"),
        published=[e.text("detail-type") for e in f.objs("events")],
        calls=Calls.read(calls) if calls else None,
        label=f.opt_text("input"),
    )


def read_run(body: dict[str, Any]) -> Run:
    """The execution and its outcome, by state machine and status."""
    execution = read_execution(body)
    f = Fields(body, "result")
    if execution.status == "RUNNING":
        return Run(execution, StillRunning())
    if execution.status != "SUCCEEDED":
        return Run(execution, read_failed(f, execution))
    output = f.obj("output")
    machine = execution.machine
    if machine == OFFBOARD:
        return Run(execution, read_revoked(output))
    if machine == AUDIT:
        return Run(execution, read_audited(output))
    if machine == BULK:
        return Run(execution, read_bulked(output.obj("report")))
    if machine == ROTATE:
        return Run(execution, read_rotated(output))
    return Run(execution, read_onboarded(output))


def read_rotated(f: Fields) -> Rotated:
    rotation = f.obj("rotation")
    key = f.opt_obj("accessKey")
    return Rotated(
        cluster_id=f.text("clusterId"),
        phase=f.text("phase"),
        trust=rotation.opt_text("trust") or "",
        kept_for=[str(c) for c in (rotation.raw("previousKeptFor") or [])],
        access_key=key.opt_text("id") if key else None,
        completed=f.text("phase") == "start" and rotation.opt_text("phase") == "finish",
    )


def read_onboarded(f: Fields) -> Onboarded:
    request = f.obj("request")
    verify = f.opt_obj("verify")
    analyzer = f.opt_obj("preflight.accessAnalyzer")
    undecidable = [
        c.text("check") for c in (verify.objs("checks") if verify else []) if c.opt_text("verdict") == "undecidable"
    ]
    return Onboarded(
        cluster_id=request.text("clusterId"),
        cluster_manager_account=request.text("clusterManagerAccountId"),
        s3_account=request.text("s3AccountId"),
        role_arn=f.text("roleArn"),
        secret_name=verify.opt_text("externalIdSecret") if verify else None,
        node_role_name=request.text("nodeRoleName"),
        access_role_name=request.text("accessRoleName"),
        assume_policy_name=request.text("assumePolicyName"),
        analyzer={str(k): str(v) for k, v in (analyzer.data if analyzer else {}).items()},
        undecidable=undecidable,
        access_key=_access_key(f.opt_obj("accessKey")),
    )


def _access_key(f: Fields | None) -> AccessKey | None:
    if f is None:
        return None
    return AccessKey(f.text("id"), f.text("state"), f.text("action"), f.text("secretName"), f.text("url"))


def read_revoked(f: Fields) -> Revoked:
    if f.flag("nothingToDo"):  # NothingDone's output: the cluster, not the request
        return Revoked(f.text("clusterId"), True, f.opt_text("reason"), [])
    cluster = f.obj("request").text("clusterId")
    changes: list[RevokedChange] = []
    for name, value in f.obj("changes").data.items():
        if isinstance(value, list):  # a Map's results: one per former placement
            changes.append(RevokedChange(name, f"{len(value)} revoked" if value else "none", ""))
            continue
        change = Fields(value, f"result.output.changes.{name}")
        action = change.opt_text("action") or change.opt_text("state") or ""
        changes.append(RevokedChange(name, action, _revoked_detail(name, change)))
    return Revoked(cluster, False, None, changes)


def _revoked_detail(name: str, change: Fields) -> str:
    reason = change.opt_text("reason")
    if name == "trust" and change.opt_text("roleName"):
        removed = change.number("removed", 0)
        where = f"the trust policy of {change.text('roleName')} in {change.opt_text('account')}"
        return f"{removed} grant(s) removed from {where}" + (f" ({reason})" if reason else "")
    if name == "assumePolicy" and change.opt_text("policyArn"):
        detached = " (detached first)" if change.flag("detached") else ""
        return f"{change.text('policyArn')}{detached}" + (f" ({reason})" if reason else "")
    if name == "registration":
        secret = change.opt_text("secret")
        return f"external ID secret {secret}" if secret else ""
    return reason or ""


def read_failed(f: Fields, execution: Execution) -> Failed:
    compensation = f.opt_obj("compensation")
    undone = None
    if compensation is not None:
        undone = [Undone(u.text("change"), _undo_result(u.raw("result"))) for u in compensation.objs("undone")]
    cluster = None
    output = f.opt_obj("output")
    if output is not None and output.opt_obj("request") is not None:
        cluster = output.obj("request").opt_text("clusterId")
    return Failed(cluster, execution.error or execution.status, execution.cause or "", undone)


def _undo_result(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("action") or value.get("result") or "undone")
    return str(value)


def read_audited(f: Fields) -> Audited:
    clusters = []
    for c in f.objs("clusters"):
        failed = c.opt_obj("failed")
        failure = f"{failed.opt_text('error')}: {failed.opt_text('cause')}" if failed else None
        drift = [
            Drift(d.text("kind"), d.opt_text("account") or "", d.opt_text("detail") or "") for d in c.objs("drift")
        ]
        clusters.append(AuditedCluster(c.text("clusterId"), drift, c.flag("repaired"), failure))
    return Audited(
        audited=f.number("audited", len(clusters)),
        in_sync=f.number("inSync", sum(1 for c in clusters if not c.drift and not c.failure)),
        drifted=f.number("drifted", sum(1 for c in clusters if c.drift)),
        failed=f.number("failed", sum(1 for c in clusters if c.failure)),
        clusters=clusters,
        omitted=f.number("clustersOmitted", 0),
    )


def read_bulked(f: Fields) -> Bulked:
    found = f.opt_obj("counts")
    counts = {str(k): int(v) for k, v in (found.data if found else {}).items()}
    problems = [
        BulkRow(p.number("line"), p.text("status"), p.opt_text("clusterId"), p.opt_text("cause"))
        for p in f.objs("problems")
    ]
    return Bulked(f.number("total", 0), counts, f.opt_text("report"), problems, f.number("problemsOmitted", 0))
