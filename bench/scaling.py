"""Time per onboarding on the emulator as clusters and existing grants grow.

Every scenario runs in one emulator, each on its own pair of accounts (so its own roles
and trust policy). Within a scenario all clusters register against the same roles (one
cluster manager account, one S3 account), so every grant lands in the same trust policy:
the contended case. Events carry
32-character external IDs and the S3 account's trust-policy quota is 4,096 (the most
AWS allows), so 100 clusters fit one role (see the capacity figures); with 48-character
generated IDs only ~69 would.

Grants are counted at the end from the trust policy itself: every cluster whose
execution SUCCEEDED must have its external ID granted to the node role; one that does
not is a lost grant (a lost update). Failed executions are counted as failures.
"""

from __future__ import annotations

import copy
import json
import random
import statistics
import string
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.trust import grant_external_ids, merge_trust_grant
from atc_xaccount_cli.local.engine import Emulator
from atc_xaccount_cli.local.run import cause_message
from bench import worlds

QUOTA = 4096
FOLLOW_TIMEOUT = 900
ID_LENGTH = 32


def external_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choice(alphabet) for _ in range(ID_LENGTH)) for _ in range(count)]


def scaling_world(world: dict[str, Any], detail: dict[str, Any], existing: list[str]) -> dict[str, Any]:
    """The sample world with the 4,096 quota and `existing` IDs already granted to the node role."""
    result = copy.deepcopy(world)
    s3 = result["accounts"][detail["s3AccountId"]]
    s3["quotas"] = {"AssumeRolePolicySizeQuota": QUOTA}
    role = s3["roles"][detail.get("accessRoleName", "atc-s3-access-keys")]
    node_arn = _node_arn(detail)
    for external_id in existing:
        role["trust"], _ = merge_trust_grant(role["trust"], node_arn, external_id)
    return result


def _node_arn(detail: dict[str, Any]) -> str:
    return f"arn:aws:iam::{detail['clusterManagerAccountId']}:role/{detail.get('nodeRoleName', 'atc-node')}"


def _events(event: dict[str, Any], count: int, tag: str, ids: list[str]) -> list[dict[str, Any]]:
    events = []
    for i in range(count):
        clone = copy.deepcopy(event)
        detail = clone.get("detail", clone)
        detail["clusterId"] = f"{detail['clusterId']}-{tag}{i:03d}"
        detail["externalId"] = ids[i]
        events.append(clone)
    return events


def _trust(emulator: Emulator, detail: dict[str, Any]) -> dict[str, Any]:
    iam = emulator.ensure_account(detail["s3AccountId"]).client("iam")
    role = iam.get_role(RoleName=detail.get("accessRoleName", "atc-s3-access-keys"))
    return role["Role"]["AssumeRolePolicyDocument"]


def _outcome(
    results: list[Any], seconds: float, trust: dict[str, Any], detail: dict[str, Any], ids: list[str]
) -> dict[str, Any]:
    """A lost grant is one whose execution SUCCEEDED but which the trust policy lacks.

    A failed execution reports its failure (and compensates): its missing grant is counted
    under `failed`/`errors`, and in `grants_missing`, not as lost.
    """
    granted = set(grant_external_ids(trust, _node_arn(detail)))
    succeeded = [r.status == "SUCCEEDED" for r in results]
    causes: dict[str, str] = {}
    for r in results:
        if r.error and r.error not in causes:
            causes[r.error] = _cause(getattr(r, "cause", None))
    return {
        "clusters": len(results),
        "seconds_total": round(seconds, 2),
        "seconds_per_onboarding": round(seconds / len(results), 3),
        "succeeded": sum(succeeded),
        "failed": len(results) - sum(succeeded),
        "errors": dict(Counter(r.error for r in results if r.error)),
        "first_cause_by_error": causes,
        "grants_present": sum(1 for i in ids if i in granted),
        "grants_missing": sum(1 for i in ids if i not in granted),
        "lost_grants": sum(1 for ok, i in zip(succeeded, ids, strict=True) if ok and i not in granted),
        "trust_policy_size": non_whitespace_size(trust),
    }


def _cause(cause: str | None) -> str:
    """The error message, and where it was raised when the payload carries a stack trace."""
    message = (cause_message(cause) or "")[:240]
    try:
        frames = json.loads(cause or "").get("stackTrace") or []
    except (json.JSONDecodeError, AttributeError):
        frames = []
    where = str(frames[-1]).strip().splitlines()[0] if frames else ""
    return f"{message} [{where}]" if where else message


def _batch(
    emulator: Emulator, event: dict[str, Any], world: dict[str, Any], count: int, *, concurrent: bool, seed: int
) -> dict[str, Any]:
    """`count` clusters on one pair of accounts: one after another, or all started first."""
    detail = event.get("detail", event)
    ids = external_ids(count, seed)
    events = _events(event, count, "c" if concurrent else "s", ids)
    emulator.seed(scaling_world(world, detail, []))
    per_execution: list[float] = []
    started = time.perf_counter()
    if concurrent:
        arns = [emulator.start(e) for e in events]
        results = [_follow(emulator, arn) for arn in arns]
    else:
        results = []
        for e in events:
            t0 = time.perf_counter()
            results.append(_follow(emulator, emulator.start(e)))
            per_execution.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    outcome = _outcome(results, seconds, _trust(emulator, detail), detail, ids)
    if per_execution:
        outcome["median_seconds_per_execution"] = round(statistics.median(per_execution), 3)
    outcome["state_ms_median"] = _state_medians(results)
    return outcome


def _follow(emulator: Emulator, arn: str) -> Any:
    """The execution's result; one still running after the timeout counts as failed."""
    try:
        return emulator.follow(arn, timeout=FOLLOW_TIMEOUT)
    except TimeoutError:
        return SimpleNamespace(status="TIMED_OUT", error="BenchTimeout", states=[])


def _state_medians(results: list[Any]) -> dict[str, float]:
    by_state: dict[str, list[float]] = {}
    for result in results:
        for state in result.states:
            if state.millis is not None:
                by_state.setdefault(state.name, []).append(state.millis)
    return {name: round(statistics.median(values), 1) for name, values in by_state.items()}


def _with_existing_grants(
    emulator: Emulator, event: dict[str, Any], world: dict[str, Any], existing: int, repeat: int, *, seed: int
) -> dict[str, Any]:
    """Onboarding time when the trust policy already grants `existing` other clusters."""
    detail = event.get("detail", event)
    ids = external_ids(existing + repeat, seed)
    events = _events(event, repeat, "g", ids[existing:])
    emulator.seed(scaling_world(world, detail, ids[:existing]))
    before = non_whitespace_size(_trust(emulator, detail))
    times, results = [], []
    for e in events:
        t0 = time.perf_counter()
        results.append(_follow(emulator, emulator.start(e)))
        times.append(time.perf_counter() - t0)
    trust = _trust(emulator, detail)
    outcome = _outcome(results, sum(times), trust, detail, ids[existing:])
    granted = set(grant_external_ids(trust, _node_arn(detail)))
    return {
        "existing_grants": existing,
        "onboardings": repeat,
        "median_seconds_per_onboarding": round(statistics.median(times), 3),
        "trust_policy_size_before": before,
        "trust_policy_size_after": outcome["trust_policy_size"],
        "succeeded": outcome["succeeded"],
        "errors": outcome["errors"],
        "existing_grants_kept": sum(1 for i in ids[:existing] if i in granted),
        "state_ms_median": _state_medians(results),
    }


def measure(
    root: Path,
    event: dict[str, Any],
    world: dict[str, Any],
    *,
    sizes: tuple[int, ...],
    grants: tuple[int, ...],
    repeat: int,
    log: Any = None,
) -> dict[str, Any]:
    """Every scenario in ONE emulator, each on its own pair of accounts (so its own roles)."""
    names = worlds.names_of(event)
    result: dict[str, Any] = {"sequential": {}, "concurrent": {}, "existing_grants": {}}
    scenarios = [("sequential", n) for n in sizes] + [("concurrent", n) for n in sizes]
    scenarios += [("existing_grants", k) for k in grants]
    with Emulator(root) as emulator:
        for index, (mode, n) in enumerate(scenarios):
            if log:
                log(f"scaling: {mode} {n}")
            ev, wd = worlds.remap(event, 81, index, names), worlds.remap(world, 81, index, names)
            if mode == "existing_grants":
                result[mode][str(n)] = _with_existing_grants(emulator, ev, wd, n, repeat, seed=2000 + n)
            else:
                result[mode][str(n)] = _batch(
                    emulator, ev, wd, n, concurrent=mode == "concurrent", seed=n + (1000 if mode == "concurrent" else 0)
                )
    return result
