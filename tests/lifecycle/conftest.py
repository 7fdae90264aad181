"""Lifecycle and safety tests: the real state machines on the embedded emulator.

Each emulated execution costs seconds, so runs that several assertions look at are
shared through module- or session-scoped fixtures; a test never mutates a shared world
(it deep-copies before editing).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.redact import Fingerprints
from atc_xaccount.trust import grant_external_ids
from atc_xaccount_cli.local.dispatch import is_write
from atc_xaccount_cli.local.faults import FaultPlan
from atc_xaccount_cli.local.run import RunReport, run_events

ROOT = Path(__file__).resolve().parents[2]
CM, S3, AUTOMATION = "111111111111", "222222222222", "123456789012"
NODE_ARN = f"arn:aws:iam::{CM}:role/atc-node"
ACCESS_ARN = f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
ASSUME_POLICY_ARN = f"arn:aws:iam::{CM}:policy/atc-s3-assume-role"
FIRST = "demo-cluster-1"

READY, FAILED, REVOKED = "Cluster S3 Access Ready", "Cluster S3 Access Failed", "Cluster S3 Access Revoked"
DRIFT = "Cluster S3 Access Drift Detected"


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a file under events/ (callers may mutate it)."""
    return json.loads((ROOT / "events" / name).read_text())


def with_detail(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of the envelope with detail fields changed (None removes a field).

    The envelope's `account` follows `clusterManagerAccountId`: EventBridge sets it to the
    sender, and a cluster manager account sends its own clusters' events.
    """
    event = copy.deepcopy(event)
    for key, value in changes.items():
        if value is None:
            event["detail"].pop(key, None)
        else:
            event["detail"][key] = value
    if "account" in event and isinstance(event["detail"].get("clusterManagerAccountId"), str):
        event["account"] = event["detail"]["clusterManagerAccountId"]
    return event


def registration(cluster: str, **detail: Any) -> dict[str, Any]:
    return with_detail(load("cluster-registered.json"), clusterId=cluster, **detail)


def deregistration(cluster: str, **detail: Any) -> dict[str, Any]:
    return with_detail(load("cluster-deregistered.json"), clusterId=cluster, **detail)


#: The cluster manager accounts the scenarios use: each may be connected to any S3 account
#: and send its events to the bus (the emulator's defaults admit the sample pair only;
#: tests/lifecycle/test_authorization.py runs with those).
SCENARIO_ACCOUNTS = ("111111111111", "333333333333", "444444444444", "555555555555", "999999999999")
SCENARIO_PARAMETERS = {
    "AllowedAccountPairs": ",".join(f"{account}:*" for account in SCENARIO_ACCOUNTS),
    "EventSourceAccounts": ",".join(SCENARIO_ACCOUNTS),
}


def run(
    events: list[dict[str, Any]],
    world: dict[str, Any],
    *,
    faults: list[str] | None = None,
    seed: int = 1,
    parameters: dict[str, str] | None = None,
) -> RunReport:
    """Start every event at once on `world` (whole events are routed by detail-type)."""
    plan = FaultPlan(faults, seed=seed) if faults else None
    labelled = [(f"event-{i}", e) for i, e in enumerate(events)]
    return run_events(
        ROOT,
        labelled,
        copy.deepcopy(world),
        prove=False,
        faults=plan,
        parameters=SCENARIO_PARAMETERS if parameters is None else parameters,
    )


def targets(world: dict[str, Any]) -> dict[str, Any]:
    """What the target accounts hold: the world minus the automation account."""
    return {account: state for account, state in world["accounts"].items() if account != AUTOMATION}


def automation(world: dict[str, Any]) -> dict[str, Any]:
    return world["accounts"].get(AUTOMATION, {})


def secrets_of(world: dict[str, Any]) -> dict[str, str]:
    """The clusters' external ID secrets (not the deployment's own fingerprint key)."""
    return {k: v for k, v in automation(world).get("secrets", {}).items() if k != FINGERPRINT_KEY}


def registry_of(world: dict[str, Any]) -> dict[str, Any]:
    return automation(world).get("registry", {})


#: The deployment's fingerprint key (template.yaml FingerprintKey), kept in the world.
FINGERPRINT_KEY = "atc-xaccount-fingerprint-key"


def fingerprints_of(world: dict[str, Any]) -> Fingerprints:
    """The fingerprints the deployment of `world` records (keyed with its FingerprintKey)."""
    return Fingerprints(automation(world)["secrets"][FINGERPRINT_KEY].encode())


def secret_name(cluster: str) -> str:
    return f"atc-xaccount/{cluster}/external-id"


def external_id(world: dict[str, Any], cluster: str) -> str:
    return secrets_of(world)[secret_name(cluster)]


def trust_of(world: dict[str, Any], account: str = S3, role: str = "atc-s3-access-keys") -> dict[str, Any]:
    return world["accounts"][account]["roles"][role]["trust"]


def node_arn(account: str = CM) -> str:
    return f"arn:aws:iam::{account}:role/atc-node"


def granted_ids(world: dict[str, Any], cm: str = CM, s3: str = S3) -> list[str]:
    """The external IDs the node role's grant holds (sorted)."""
    return grant_external_ids(trust_of(world, s3), node_arn(cm))


def admits(world: dict[str, Any], ext_id: str | None, cm: str = CM, s3: str = S3) -> bool:
    """Would the access role let the node role in with this external ID?"""
    return evaluate_trust(trust_of(world, s3), node_arn(cm), ext_id).allowed


def iam_writes(*calls: dict[str, Any]) -> dict[str, int]:
    """IAM write calls by operation, summed over one or more call summaries."""
    total: Counter[str] = Counter()
    for summary in calls:
        total.update({k: n for k, n in summary["by_operation"].items() if k.startswith("iam:") and is_write(k)})
    return dict(total)


def relocated(world: dict[str, Any], cm: str, s3: str) -> dict[str, Any]:
    """The same accounts' state under other account IDs (a second, independent pair)."""
    return json.loads(json.dumps(world).replace(CM, cm).replace(S3, s3))


def published(report: Any, detail_type: str) -> list[dict[str, Any]]:
    """Events of that detail-type an execution (or a whole run) published."""
    return [e for e in report.events if e["detail-type"] == detail_type]


@pytest.fixture(scope="session")
def sample_world() -> dict[str, Any]:
    return load("sample-world.json")


@pytest.fixture(scope="session")
def registered(sample_world: dict[str, Any]) -> RunReport:
    """demo-cluster-1 onboarded on the sample world: the starting point of many scenarios."""
    report = run([registration(FIRST)], sample_world)
    assert report.result.status == "SUCCEEDED", report.cause_message
    return report
