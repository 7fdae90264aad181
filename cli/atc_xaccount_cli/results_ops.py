"""Typed results of the read-only operator commands: plan, show, snapshot, doctor; and a few small ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atc_xaccount_cli.results import Fields


@dataclass(frozen=True)
class Refused:
    """The layer refused the request (an `AtcXaccountError`): its name and message, nothing written."""

    command: str
    error: str
    message: str


def read_refused(command: str, body: dict[str, Any]) -> Refused:
    f = Fields(body, "result")
    return Refused(command, f.text("error"), f.opt_text("message") or "")


@dataclass(frozen=True)
class PlannedChange:
    name: str
    action: str
    target: str


@dataclass(frozen=True)
class Plan:
    cluster_id: str
    cluster_manager_account: str
    s3_account: str
    up_to_date: bool
    changes: list[PlannedChange]
    analyzer: dict[str, str]


def read_plan(body: dict[str, Any]) -> Plan:
    f = Fields(body, "plan")
    request = f.obj("request")
    changes = []
    for name, value in f.obj("changes").data.items():
        change = Fields(value, f"plan.changes.{name}")
        target = (
            change.opt_text("policyArn")
            or (
                f"role {change.text('roleName')} in {change.opt_text('account')}" if change.opt_text("roleName") else ""
            )
            or change.opt_text("secretName")
            or change.opt_text("name")
            or ""
        )
        changes.append(PlannedChange(name, change.opt_text("action") or "unchanged", target))
    analyzer = f.opt_obj("preflight.accessAnalyzer")
    return Plan(
        cluster_id=request.text("clusterId"),
        cluster_manager_account=request.text("clusterManagerAccountId"),
        s3_account=request.text("s3AccountId"),
        up_to_date=f.flag("upToDate"),
        changes=changes,
        analyzer={str(k): str(v) for k, v in (analyzer.data if analyzer else {}).items()},
    )


@dataclass(frozen=True)
class Shown:
    cluster_id: str
    registered: bool
    state: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    secret_name: str | None = None
    note: str | None = None
    cluster_manager_account: str | None = None
    s3_account: str | None = None
    buckets: tuple[str, ...] = ()
    last_execution: str | None = None


def read_shown(body: dict[str, Any]) -> Shown:
    f = Fields(body, "show")
    if not f.flag("registered"):
        return Shown(f.text("clusterId"), False)
    registration = f.opt_obj("registration")
    return Shown(
        cluster_id=f.text("clusterId"),
        registered=True,
        state=f.opt_text("state"),
        role_arn=f.opt_text("roleArn"),
        external_id=f.opt_text("externalId"),
        secret_name=f.opt_text("externalIdSecret"),
        note=f.opt_text("note"),
        cluster_manager_account=registration.opt_text("clusterManagerAccountId") if registration else None,
        s3_account=registration.opt_text("s3AccountId") if registration else None,
        buckets=tuple(str(b) for b in (registration.items("buckets") if registration else [])),
        last_execution=registration.opt_text("lastExecution") if registration else None,
    )


@dataclass(frozen=True)
class Snapshot:
    world: dict[str, Any]
    written: str | None


def read_snapshot(body: dict[str, Any]) -> Snapshot:
    f = Fields(body, "snapshot")
    if f.opt_text("written"):
        return Snapshot({"accounts": {a: {} for a in f.items("accounts")}}, f.text("written"))
    return Snapshot(f.data, None)


@dataclass(frozen=True)
class Rotation:
    """`rotate-external-id`: what changed, and what the operator does next."""

    cluster_id: str
    facts: list[tuple[str, str]]
    next_step: str | None


def read_rotation(body: dict[str, Any]) -> Rotation:
    f = Fields(body, "rotation")
    facts = [(k, str(v)) for k, v in f.data.items() if k not in ("clusterId", "next") and not isinstance(v, dict)]
    return Rotation(f.text("clusterId"), facts, f.opt_text("next"))


@dataclass(frozen=True)
class PutEntry:
    event_id: str | None
    error: str | None


@dataclass(frozen=True)
class EventsPut:
    """`register --via events`: the event is on the bus; EventBridge starts the execution."""

    bus: str
    detail_type: str
    cluster_id: str | None
    entries: list[PutEntry]


def read_events_put(body: dict[str, Any]) -> EventsPut:
    f = Fields(body, "put")
    entries = [
        PutEntry(
            e.opt_text("EventId"),
            f"{e.opt_text('ErrorCode')}: {e.opt_text('ErrorMessage')}" if e.opt_text("ErrorCode") else None,
        )
        for e in f.objs("entries")
    ]
    return EventsPut(f.opt_text("bus") or "default", f.opt_text("detailType") or "", f.opt_text("clusterId"), entries)


@dataclass(frozen=True)
class Link:
    name: str
    verdict: str
    claim: str
    statements: list[str]
    detail: str
    fix: str


@dataclass(frozen=True)
class Doctored:
    cluster_id: str
    verdict: str
    first_broken: Link | None
    links: list[Link]
    role_arn: str | None
    external_id: str | None
    secret_name: str | None


def _link(f: Fields) -> Link:
    return Link(
        f.text("link"),
        f.text("verdict"),
        f.text("claim"),
        [str(s) for s in f.items("statements")],
        f.opt_text("detail") or "",
        f.opt_text("fix") or "",
    )


def read_doctored(body: dict[str, Any]) -> Doctored:
    f = Fields(body, "doctor")
    first = f.opt_obj("firstBroken")
    return Doctored(
        cluster_id=f.text("clusterId"),
        verdict=f.text("verdict"),
        first_broken=_link(first) if first else None,
        links=[_link(link) for link in f.objs("links")],
        role_arn=f.opt_text("roleArn"),
        external_id=f.opt_text("externalId"),
        secret_name=f.opt_text("externalIdSecret"),
    )
