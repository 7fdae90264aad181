"""Contention with AWS's time (issue 18 item 5): a burst of one cluster manager account.

`burst_one_cm`: 50 registrations of one cluster manager account over 10 S3 accounts (5
clusters per access role), started at once on the emulator with the template's default
propagation wait (10 s) and each step's AWS call taking about what it takes on AWS
(`aws_time.CALL_SECONDS`, applied through the dispatcher's `before_call` hook, so the same
measurement runs on code from before issue 18). Figures: executions Ready, failures for a
lock (`ResourceLocked`), seconds from the start to the last one ended, IAM writes, the
documents they changed, and one uncontended onboarding measured the same way.

`documents_changed` counts what a tool rendering each document once would write: every
trust policy whose document changed, every assume policy created or given a new default
document, every attachment made. `iam_writes_over_documents` is IAM write calls over it.

The emulator runs every "Lambda" of the burst in one process, under one interpreter lock:
its own CPU (moto, the handlers, the state machine interpreter) queues the 50 executions
behind each other, where AWS runs them on separate machines. So the burst runs on a
dilated clock (`TIME_DILATION`, default 10): every AWS call sleeps D times its seconds, the
propagation wait is D times 10 s, and the state machines' Retry intervals sleep D times
theirs; the figures are wall seconds over D. The emulator's CPU then weighs 1/D of what it
weighs at real speed; `wall_seconds` and `emulator_cpu_seconds` say what it was.

`python -m bench.contention [N] [--s3-accounts K] [--dilation D]`: this measurement alone,
JSON on stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atc_xaccount_cli.local.dispatch import is_write
from atc_xaccount_cli.local.run import run_events
from bench import bulk

#: Seconds per AWS call a step makes, by service (as aws_time.CALL_SECONDS; kept here too so
#: the bench runs unchanged on code from before that module existed).
CALL_SECONDS = {"iam:read": 0.08, "iam:write": 0.25, "sts": 0.1, "secretsmanager": 0.04, "dynamodb": 0.012}
DEFAULT_CALL_SECONDS = 0.05
PROPAGATION_WAIT = "10"
#: AWS's time runs this many times slower than the wall clock (see the module's docstring).
TIME_DILATION = 10


@contextlib.contextmanager
def dilated_retries(dilation: float) -> Iterator[None]:
    """The state machines' Retry intervals (moto's interpreter sleeps them) last `dilation` times longer."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    real = retrier_decl.time

    class _Dilated:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            real.sleep(seconds * dilation)

    retrier_decl.time = _Dilated()  # type: ignore[assignment]
    try:
        yield
    finally:
        retrier_decl.time = real


class AwsCallTime:
    """A `faults` object for run_events whose only effect is time: each call sleeps AWS's seconds
    (times the clock's dilation)."""

    def __init__(self, dilation: float = 1) -> None:
        self.injected: list[dict[str, Any]] = []
        self.dilation = dilation

    def before_call(self, step: str, key: str, params: dict[str, Any]) -> None:
        service = key.partition(":")[0]
        if service == "iam":
            service = "iam:write" if is_write(key) else "iam:read"
        time.sleep(CALL_SECONDS.get(service, DEFAULT_CALL_SECONDS) * self.dilation)

    def around_call(self, step: str, client: Any, key: str, params: Any, proceed: Any, original: Any) -> Any:
        return proceed()

    def after_call(self, step: str, key: str, params: dict[str, Any], response: Any) -> Any:
        return response


def iam_writes(calls: dict[str, Any]) -> int:
    return sum(n for k, n in calls["by_operation"].items() if k.startswith("iam:") and is_write(k))


def documents_changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Trust policies changed, assume policies created or changed, attachments made."""
    trust = policies = attachments = 0
    for account, state in after["accounts"].items():
        old = before["accounts"].get(account, {})
        for name, role in (state.get("roles") or {}).items():
            was = (old.get("roles") or {}).get(name) or {}
            trust += was.get("trust") != role.get("trust")
            attachments += len(set(role.get("attached") or []) - set(was.get("attached") or []))
        for name, policy in (state.get("policies") or {}).items():
            was = (old.get("policies") or {}).get(name)
            policies += was is None or was.get("document") != policy.get("document")
    return {"trust_policies": trust, "managed_policies": policies, "attachments": attachments}


def _with_documents(result: dict[str, Any], before: dict[str, Any], after: dict[str, Any], calls: Any) -> None:
    changed = documents_changed(before, after)
    result["documents_changed_detail"] = changed
    result["documents_changed"] = sum(changed.values())
    result["iam_writes"] = iam_writes(calls)
    result["iam_writes_by_operation"] = {
        k: n for k, n in sorted(calls["by_operation"].items()) if k.startswith("iam:") and is_write(k)
    }
    docs = result["documents_changed"]
    result["iam_writes_over_documents"] = round(result["iam_writes"] / docs, 2) if docs else None


def _run(
    root: Path, rows: list[dict[str, Any]], world: dict[str, Any], cm: str, pairs: dict[str, str], dilation: float
) -> tuple[Any, float]:
    """The report and the process CPU seconds it took."""
    events = [(row["clusterId"], row) for row in rows]  # each row is an event's detail (a manual start)
    wait = str(round(int(PROPAGATION_WAIT) * dilation))
    params = {**pairs, "PropagationWaitSeconds": wait, "EventSourceAccounts": cm}
    cpu = time.process_time()
    with dilated_retries(dilation):
        report = run_events(
            root, events, json.loads(json.dumps(world)), prove=False, parameters=params, faults=AwsCallTime(dilation)
        )
    return report, time.process_time() - cpu


def measure(
    root: Path, clusters: int = 50, *, s3_accounts: int = 10, dilation: float = TIME_DILATION, log: Any = None
) -> dict[str, Any]:
    generated = bulk.plan(clusters, s3_accounts, 1)
    world, rows = generated["world"], sorted(generated["rows"], key=lambda r: r["clusterId"])
    cm = rows[0]["clusterManagerAccountId"]
    pairs = generated["parameters"]  # AllowedAccountPairs: the cluster manager account to any S3 account
    single, single_cpu = _run(root, rows[:1], world, cm, pairs, dilation)
    if log:
        log(f"contention: one uncontended onboarding {single.seconds / dilation:.1f} s (x{dilation}); now {clusters}")
    report, cpu = _run(root, rows, world, cm, pairs, dilation)
    statuses = Counter(e.result.status for e in report.executions)
    if single.executions[0].result.status != "SUCCEEDED":
        raise RuntimeError(f"the uncontended onboarding failed: {single.executions[0].cause_message}")
    errors = Counter(e.result.error for e in report.executions if e.result.status != "SUCCEEDED")
    result: dict[str, Any] = {
        "clusters": clusters,
        "cluster_manager_accounts": 1,
        "s3_accounts": s3_accounts,
        "propagation_wait_seconds": int(PROPAGATION_WAIT),
        "time_dilation": dilation,
        "wall_seconds": round(report.seconds, 1),
        "emulator_cpu_seconds": round(cpu, 1),
        "wall_seconds_one_uncontended": round(single.seconds, 1),
        "emulator_cpu_seconds_one_uncontended": round(single_cpu, 1),
        "aws_call_seconds": {**CALL_SECONDS, "other": DEFAULT_CALL_SECONDS},
        "ready": statuses["SUCCEEDED"],
        "failed": clusters - statuses["SUCCEEDED"],
        "errors": dict(errors.most_common()),
        "resource_locked_failures": errors["ResourceLocked"],
        "seconds_to_last_ready": round(report.seconds / dilation, 1),
        "seconds_one_uncontended": round(single.seconds / dilation, 1),
        "calls_one_uncontended": single.calls["total"],
        "iam_writes_one_uncontended": iam_writes(single.calls),
        "calls": report.calls["total"],
        "calls_per_cluster": round(report.calls["total"] / clusters, 1),
    }
    result["last_ready_over_one"] = round(report.seconds / single.seconds, 2) if single.seconds else None
    _with_documents(result, world, report.world, report.calls)
    return result


def bulk_documents(result: dict[str, Any], before: dict[str, Any], after: dict[str, Any], calls: Any) -> None:
    """Add the documents figures to a bulk result (bench.bulk.measure)."""
    _with_documents(result, before, after, calls)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.contention", description=__doc__.splitlines()[0])
    parser.add_argument("clusters", nargs="?", type=int, default=50)
    parser.add_argument("--s3-accounts", type=int, default=10)
    parser.add_argument("--dilation", type=float, default=TIME_DILATION, help="AWS's time runs D times slower")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    def log(message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    with contextlib.redirect_stdout(sys.stderr):
        result = measure(
            args.root.resolve(), args.clusters, s3_accounts=args.s3_accounts, dilation=args.dilation, log=log
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def results(raw: dict[str, Any]) -> dict[str, Any]:
    """The issue-18 keys of bench/results.json (null when a section did not run)."""
    bulk_run, one_cm = raw.get("bulk") or {}, raw.get("bulk_one_cm")
    return {
        "burst_one_cm": raw.get("burst_one_cm"),
        "bulk_iam_writes": bulk_run.get("iam_writes"),
        "bulk_documents_changed": bulk_run.get("documents_changed"),
        "bulk_iam_writes_over_documents": bulk_run.get("iam_writes_over_documents"),
        "bulk_one_cm_1000": one_cm if one_cm and one_cm["clusters"] == 1000 else None,
        "bulk_one_cm": one_cm,
    }


def targets(r: dict[str, Any]) -> dict[str, bool | None]:
    burst, one_cm = r.get("burst_one_cm"), r.get("bulk_one_cm_1000")
    ratio = r.get("bulk_iam_writes_over_documents")
    return {
        "burst_one_cm: ready == 50": burst["ready"] == 50 if burst else None,
        "burst_one_cm: resource_locked_failures == 0": burst["resource_locked_failures"] == 0 if burst else None,
        "burst_one_cm: last_ready_over_one <= 3 (a small multiple)": (
            burst["last_ready_over_one"] <= 3 if burst and burst.get("last_ready_over_one") else None
        ),
        "bulk: iam_writes_over_documents <= 1.25": ratio <= 1.25 if ratio is not None else None,
        "bulk_one_cm_1000: 0 failed rows": one_cm["failed"] == 0 if one_cm else None,
    }


def table(r: dict[str, Any], row: Any, section: Any) -> None:
    """The issue-18 rows of the bench table."""
    section("Contention with AWS's time (issue 18; goals in the right column)")
    b = r.get("burst_one_cm")
    if b is None:
        row("burst_one_cm", "null", "not run (--no-burst)")
    else:
        errors = ", ".join(f"{n} {e}" for e, n in b["errors"].items()) or "none failed"
        row(f"  burst_one_cm: ready of {b['clusters']}", b["ready"], f"goal {b['clusters']}; {errors}")
        row("  resource_locked_failures", b["resource_locked_failures"], "goal 0")
        row(
            "  seconds_to_last_ready",
            b["seconds_to_last_ready"],
            f"one uncontended: {b['seconds_one_uncontended']} s ({b['last_ready_over_one']}x; goal a small multiple);"
            f" clock dilated x{b.get('time_dilation', 1)}, emulator CPU {b.get('emulator_cpu_seconds')} s",
        )
        row(
            "  iam_writes / documents_changed",
            f"{b['iam_writes']} / {b['documents_changed']}",
            b["iam_writes_by_operation"],
        )
    row(
        "  bulk: iam_writes / documents_changed",
        f"{_null(r.get('bulk_iam_writes'))} / {_null(r.get('bulk_documents_changed'))}",
        f"ratio {_null(r.get('bulk_iam_writes_over_documents'))}; goal <= 1.25",
    )
    one = r.get("bulk_one_cm")
    if one is None:
        row("  bulk_one_cm_1000", "null", "not run (--bulk-one-cm 1000)")
    else:
        row(
            f"  bulk of {one['clusters']} rows, one cluster manager: failed",
            one["failed"],
            f"goal 0; {one['seconds']} s",
        )


def _null(value: Any) -> str:
    return "null" if value is None else str(value)
