"""Bulk onboarding on the emulator: N clusters across many accounts, one registrations file.

The world and the file are generated deterministically (seeded):

- `s3_accounts` S3 accounts, each with the prerequisites of the sample world: the role
  `atc-s3-access-keys` (its EC2 trust statement) with `atc-s3-policy` attached, and the
  bucket that policy names;
- `cm_accounts` cluster manager accounts, each with `atc-node` (EC2 trust statement);
- N rows (JSON lines, the format `local run --from-file` accepts), `N / s3_accounts`
  clusters per S3 account; cluster i's manager is account `i mod cm_accounts`
  (round-robin), so with 10 clusters per S3 account and 10 managers every access role
  grants 10 different node roles, and every manager's `atc-s3-assume-role` names every
  S3 account it serves. Rows carry 32-character external IDs and are shuffled (seeded):
  a file from an inventory is not grouped by account.

Ten distinct node roles in one trust policy need ~2,500 characters (one statement per
principal), more than IAM's default 2,048, so each S3 account's trust quota is set to
4,096 (a Service Quotas increase; the most AWS allows). `trust_quota` and the predicted
final size are in the result.

The run is the real bulk workflow (`statemachine/bulk.asl.json`, Distributed Map over
the real onboarding workflow) through `atc_xaccount_cli.local.run.run_bulk`. Afterwards
every row is checked against the world the run left: a row reported SUCCEEDED whose
external ID the access role's trust policy does not grant to its cluster's node role is
a **lost grant**; rows missing from the trust policy for any reason are `grants_missing`.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import string
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.trust import grant_external_ids, merge_trust_grant
from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT
from atc_xaccount_cli.local.run import ONBOARD, run_bulk

ACCESS_ROLE = "atc-s3-access-keys"
ACCESS_POLICY = "atc-s3-policy"
NODE_ROLE = "atc-node"
ID_LENGTH = 32
DEFAULT_QUOTA = 2048
RAISED_QUOTA = 4096
SEED = 500
CM_PREFIX, S3_PREFIX = "710000", "720000"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def cm_account(index: int) -> str:
    return f"{CM_PREFIX}{index:06d}"


def s3_account(index: int) -> str:
    return f"{S3_PREFIX}{index:06d}"


def bucket_of(account: str) -> str:
    return f"atc-bulk-{account}"


def node_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{NODE_ROLE}"


def external_ids(count: int, rng: random.Random) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choice(alphabet) for _ in range(ID_LENGTH)) for _ in range(count)]


def plan(clusters: int, s3_accounts: int, cm_accounts: int, *, seed: int = SEED) -> dict[str, Any]:
    """The world, the rows (file order) and the trust quota; deterministic for a seed."""
    if clusters < 1 or not 1 <= s3_accounts <= clusters or not 1 <= cm_accounts <= clusters:
        raise ValueError("need 1 <= accounts <= clusters")
    rng = random.Random(seed)
    ids = external_ids(clusters, rng)
    rows = []
    for i in range(clusters):
        s3 = s3_account(i * s3_accounts // clusters)  # contiguous blocks: N / s3_accounts each
        rows.append(
            {
                "clusterId": f"bulk-{i:04d}",
                "clusterManagerAccountId": cm_account(i % cm_accounts),
                "s3AccountId": s3,
                "buckets": [bucket_of(s3)],
                "externalId": ids[i],
            }
        )
    # What each trust policy will hold if every row succeeds: decides the quota.
    predicted: dict[str, dict[str, Any]] = {}
    for row in rows:
        trust = predicted.get(row["s3AccountId"], EC2_TRUST)
        predicted[row["s3AccountId"]], _ = merge_trust_grant(
            trust, node_arn(row["clusterManagerAccountId"]), row["externalId"]
        )
    largest = max(non_whitespace_size(t) for t in predicted.values())
    quota = DEFAULT_QUOTA if largest <= DEFAULT_QUOTA else RAISED_QUOTA
    world: dict[str, Any] = {"accounts": {}}
    for k in range(cm_accounts):
        world["accounts"][cm_account(k)] = {
            "roles": {NODE_ROLE: {"trust": EC2_TRUST, "attached": []}},
            "policies": {},
            "buckets": [],
        }
    for j in range(s3_accounts):
        account = s3_account(j)
        bucket = bucket_of(account)
        state: dict[str, Any] = {
            "roles": {
                ACCESS_ROLE: {"trust": EC2_TRUST, "attached": [f"arn:aws:iam::{account}:policy/{ACCESS_POLICY}"]}
            },
            "policies": {ACCESS_POLICY: {"versions": 1, "document": _access_policy(bucket)}},
            "buckets": [bucket],
        }
        if quota != DEFAULT_QUOTA:
            state["quotas"] = {"AssumeRolePolicySizeQuota": quota}
        world["accounts"][account] = state
    order = list(range(clusters))
    rng.shuffle(order)
    return {
        "world": world,
        # The deployment connects every generated cluster manager account to its S3 accounts.
        "parameters": {"AllowedAccountPairs": ",".join(f"{cm_account(k)}:*" for k in range(cm_accounts))},
        "rows": [rows[i] for i in order],
        "trust_quota": quota,
        "trust_policy_size_predicted_max": largest,
    }


def _access_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Bucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
            {
                "Sid": "Objects",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
        ],
    }


def write_registrations(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _transitions(emulator: Any, bulk_result: Any) -> dict[str, Any]:
    """The onboarding executions the Distributed Map started, from their histories.

    Transitions are states entered (section 2); failed attempts are the Lambda failures a
    Retry absorbed or a Catch handled, by error: `ResourceLocked` is a lock wait.
    """
    sfn = emulator.client("stepfunctions")
    arns = [
        e["executionArn"]
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=emulator.state_machine_arns[ONBOARD])
        for e in page["executions"]
    ]
    counts: list[int] = []
    failed_attempts: Counter[str] = Counter()
    for arn in arns:
        entered = 0
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            for event in page["events"]:
                if event["type"].endswith("StateEntered"):
                    entered += 1
                elif event["type"] == "LambdaFunctionFailed":
                    failed_attempts[event["lambdaFunctionFailedEventDetails"].get("error", "?")] += 1
        counts.append(entered)
    return {
        "bulk_execution": bulk_result.transitions,
        "onboard_executions": len(counts),
        "onboard_total": sum(counts),
        "onboard_median": statistics.median(counts) if counts else None,
        "onboard_max": max(counts, default=None),
        "onboard_failed_attempts_by_error": dict(failed_attempts.most_common()),
    }


def _progress(emulator: Any, clusters: int, done: threading.Event, log: Any, every: float = 30) -> None:
    """Log the onboarding executions by status while the bulk runs (a long run is not silent)."""
    sfn = emulator.client("stepfunctions")
    arn = emulator.state_machine_arns[ONBOARD]
    started = time.monotonic()
    while not done.wait(every):
        try:
            statuses = Counter(
                e["status"]
                for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
                for e in page["executions"]
            )
        except Exception as exc:  # noqa: BLE001 - a progress line is never worth failing the run
            statuses = Counter({type(exc).__name__: 1})
        log(f"bulk: {time.monotonic() - started:.0f} s, of {clusters}: {dict(sorted(statuses.items()))}")


def _error_of(cause: str | None) -> str:
    """The error name a report row's cause starts with (`ResourceLocked: ...`)."""
    head = (cause or "").split(":", 1)[0].strip()
    return head if head and " " not in head else "unknown"


def evaluate(rows: list[dict[str, Any]], report_rows: list[dict[str, Any]], world: dict[str, Any]) -> dict[str, Any]:
    """Every row of the file against the bulk report and the trust policies the run left."""
    by_cluster = {r["clusterId"]: r for r in report_rows if r.get("clusterId")}
    # Secrets are named `<prefix>/<clusterId>/external-id`.
    secrets = world["accounts"].get(AUTOMATION_ACCOUNT, {}).get("secrets", {})
    stored_ids = {name.split("/")[-2]: value for name, value in secrets.items() if name.count("/") >= 2}
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    causes: dict[str, str] = {}
    lost, missing, present, secret_mismatch, unreported = [], [], 0, [], []
    sizes: list[int] = []
    for row in rows:
        cluster = row["clusterId"]
        reported = by_cluster.get(cluster)
        status = reported["status"] if reported else "UNREPORTED"
        statuses[status] += 1
        if reported is None:
            unreported.append(cluster)
        elif status != "SUCCEEDED":
            error = _error_of(reported.get("cause"))
            errors[error] += 1
            causes.setdefault(error, (reported.get("cause") or "")[:300])
        if status == "SUCCEEDED" and stored_ids.get(cluster) != row["externalId"]:
            secret_mismatch.append(cluster)
        role = world["accounts"].get(row["s3AccountId"], {}).get("roles", {}).get(ACCESS_ROLE)
        granted = set(grant_external_ids(role["trust"], node_arn(row["clusterManagerAccountId"]))) if role else set()
        if row["externalId"] in granted:
            present += 1
        else:
            missing.append(cluster)
            if status == "SUCCEEDED":
                lost.append(cluster)
    for account in {row["s3AccountId"] for row in rows}:
        role = world["accounts"].get(account, {}).get("roles", {}).get(ACCESS_ROLE)
        if role:
            sizes.append(non_whitespace_size(role["trust"]))
    return {
        "rows": len(rows),
        "reported_rows": len(report_rows),
        "status_counts": dict(sorted(statuses.items())),
        "succeeded": statuses["SUCCEEDED"],
        "failed": len(rows) - statuses["SUCCEEDED"],
        "errors": dict(errors.most_common()),
        "first_cause_by_error": causes,
        "unreported_count": len(unreported),
        "unreported": unreported[:20],
        "grants_present": present,
        "grants_missing": len(missing),
        "lost_grants": len(lost),
        "lost_grant_clusters": lost[:20],
        "secret_mismatch": len(secret_mismatch),
        "trust_policy_size_max": max(sizes, default=None),
    }


def measure(
    root: Path,
    clusters: int = 500,
    *,
    s3_accounts: int | None = None,
    cm_accounts: int | None = None,
    seed: int = SEED,
    log: Any = None,
) -> dict[str, Any]:
    """Generate, run the bulk workflow once, check every row. Figures are emulator figures."""
    s3_accounts = s3_accounts or max(1, clusters // 10)
    cm_accounts = cm_accounts or min(10, clusters)
    generated = plan(clusters, s3_accounts, cm_accounts, seed=seed)
    rows = generated["rows"]
    inspected: dict[str, Any] = {}
    done = threading.Event()

    def on_start(emulator: Any) -> None:
        if log:
            threading.Thread(target=_progress, args=(emulator, clusters, done, log), daemon=True).start()

    def on_finish(emulator: Any, result: Any) -> None:
        done.set()
        inspected["transitions"] = _transitions(emulator, result)

    load_start = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="atc-bench-bulk-") as tmp:
        path = write_registrations(rows, Path(tmp) / f"bulk-{clusters}.jsonl")
        if log:
            log(f"bulk: {clusters} clusters, {s3_accounts} S3 accounts, {cm_accounts} cluster manager accounts")
        try:
            report = run_bulk(
                root,
                path,
                generated["world"],
                parameters=generated["parameters"],
                on_start=on_start,
                on_finish=on_finish,
            )
        finally:
            done.set()
    wall = time.perf_counter() - started
    load_end = [round(x, 2) for x in os.getloadavg()]
    execution = report.executions[0]
    bulk_report = execution.bulk_report or {}
    checked = evaluate(rows, bulk_report.get("rows") or [], report.world)
    calls = report.calls
    from bench.contention import bulk_documents  # (bench.contention imports this module)

    bulk_documents(checked, generated["world"], report.world, calls)
    return {
        "clusters": clusters,
        "s3_accounts": s3_accounts,
        "cluster_manager_accounts": cm_accounts,
        "clusters_per_s3_account": clusters / s3_accounts,
        "manager_assignment": "round-robin: cluster i -> cluster manager i mod accounts",
        "row_order": f"shuffled, seed {seed}",
        "external_id_length": ID_LENGTH,
        "trust_quota": generated["trust_quota"],
        "trust_policy_size_predicted_max": generated["trust_policy_size_predicted_max"],
        "max_concurrency": _max_concurrency(root),
        "status": execution.result.status,
        "error": execution.result.error,
        "cause": execution.cause_message,
        "seconds": round(report.seconds, 1),
        "seconds_wall_with_setup": round(wall, 1),
        "seconds_per_cluster": round(report.seconds / clusters, 3),
        **checked,
        "bulk_report_counts": bulk_report.get("counts"),
        "calls": {
            "total": calls["total"],
            "writes": calls["writes"],
            "per_cluster": round(calls["total"] / clusters, 1),
            "by_operation": calls["by_operation"],
        },
        "transitions": inspected.get("transitions"),
        "largest_payload_bytes": report.largest_payload,
        "largest_history_events": report.largest_history,
        "load_average": {"start": load_start, "end": load_end},
    }


#: Rows per access role in `--one-cm` (bulk_one_cm_1000): one commit serves at most
#: `queue.BATCH` (40) intents, and 40 external IDs of 32 characters for one node role keep a
#: trust policy at 1,731 characters, under IAM's default 2,048; the one assume policy then
#: names N / 40 access roles (25 for 1,000 rows: 1,433 characters of the 6,144 allowed).
ONE_CM_ROWS_PER_ACCESS_ROLE = 40


def one_cm_s3_accounts(rows: int) -> int:
    """S3 accounts for a bulk of `rows` into one cluster manager account."""
    return max(1, -(-rows // ONE_CM_ROWS_PER_ACCESS_ROLE))


def _max_concurrency(root: Path) -> int | None:
    definition = json.loads((root / "statemachine" / "bulk.asl.json").read_text(encoding="utf-8"))
    return definition["States"].get("OnboardEach", {}).get("MaxConcurrency")


def _provenance(root: Path, command: str) -> dict[str, Any]:
    """When and on what this standalone run measured (bench.run records the same in its meta)."""
    import datetime as dt
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "command": command,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "HEAD") or None,
        "uncommitted_changes": len(git("status", "--porcelain").splitlines()),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.bulk [N]`: this measurement alone, JSON on stdout."""
    import argparse
    import contextlib
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.splitlines()[0])
    parser.add_argument("clusters", nargs="?", type=int, default=500)
    parser.add_argument("--s3-accounts", type=int)
    parser.add_argument("--cm-accounts", type=int)
    parser.add_argument(
        "--one-cm",
        type=int,
        metavar="N",
        help="N rows into ONE cluster manager account over N/40 S3 accounts (bulk_one_cm_1000: --one-cm 1000)",
    )
    args = parser.parse_args(argv)
    if args.one_cm:
        args.clusters, args.cm_accounts = args.one_cm, 1
        args.s3_accounts = args.s3_accounts or one_cm_s3_accounts(args.one_cm)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    root = Path(__file__).resolve().parents[1]

    def log(message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    with contextlib.redirect_stdout(sys.stderr):
        result = measure(root, args.clusters, s3_accounts=args.s3_accounts, cm_accounts=args.cm_accounts, log=log)
    command = f"python -m bench.bulk --one-cm {args.one_cm}" if args.one_cm else f"python -m bench.bulk {args.clusters}"
    result["measured"] = _provenance(root, command)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
