"""Engine tests: the real ASL and handlers on the embedded emulator."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.local.run import RunReport, run_event

ROOT = Path(__file__).resolve().parents[2]
CM, S3 = "111111111111", "222222222222"


def load(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


@pytest.fixture
def sample_world() -> dict[str, Any]:
    return load("sample-world.json")


@pytest.fixture
def registered_event() -> dict[str, Any]:
    return load("cluster-registered.json")


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


def admitting(*pairs: str) -> dict[str, str]:
    """Template parameters connecting `pairs` (`CM:S3`) and admitting their senders on the bus."""
    senders = sorted({pair.split(":")[0] for pair in pairs})
    return {"AllowedAccountPairs": ",".join(pairs), "EventSourceAccounts": ",".join(senders)}


def onboard(event: dict[str, Any], world: dict[str, Any], **options: Any) -> RunReport:
    return run_event(ROOT, event, world, **options)


def iam_writes(report: RunReport) -> dict[str, int]:
    return {k: n for k, n in report.calls["by_operation"].items() if k.startswith("iam:") and _is_write(k)}


def _is_write(key: str) -> bool:
    from atc_xaccount_cli.local.dispatch import is_write

    return is_write(key)


def trust_of(world: dict[str, Any], account: str = S3, role: str = "atc-s3-access-keys") -> dict[str, Any]:
    return world["accounts"][account]["roles"][role]["trust"]


def without_secrets(world: dict[str, Any]) -> dict[str, Any]:
    """The IAM/S3 part of a world: what the target accounts hold."""
    return {
        account: {k: v for k, v in state.items() if k != "secrets"}
        for account, state in world["accounts"].items()
        if set(state) - {"secrets"}
    }
