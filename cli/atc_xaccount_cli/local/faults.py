"""Fault injection into the steps' AWS calls (`local run --faults SPEC`).

A spec is `[Step/]service:Operation=kind[:probability[:limit]]`, e.g.
`iam:UpdateAssumeRolePolicy=throttle:0.3`, `iam:AttachRolePolicy=fail:1`,
`MergeTrust/iam:GetRole=fail`, `iam:writes=throttle:0.3`. `Operation` may be a glob, or
`writes` for every call of that service that changes state. Each kind raises the error
AWS itself returns, so the workflow's Retry/Catch handle it exactly as in AWS.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount_cli.local.dispatch import is_write

#: kind -> (HTTP status, AWS error code, message)
KINDS: dict[str, tuple[int, str, str]] = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "conflict": (409, "ConcurrentModification", "Concurrent modification of the entity; retry"),
    "propagation": (400, "MalformedPolicyDocument", "Invalid principal in policy: the principal is not yet visible"),
    "denied": (403, "AccessDenied", "User is not authorized to perform this operation"),
    "fail": (500, "ServiceFailure", "The request processing has failed because of an unknown error"),
    "limit": (409, "LimitExceeded", "Cannot exceed quota"),
}


class FaultSpecError(ValueError):
    """A --faults spec that does not parse; the message shows the expected form."""


@dataclass
class Fault:
    step: str | None
    service: str
    operation: str
    kind: str
    probability: float
    limit: int | None
    injected: int = 0

    def applies(self, step: str, key: str) -> bool:
        service, _, operation = key.partition(":")
        if self.step is not None and self.step.lower() not in {step.lower(), step.lower().removesuffix("function")}:
            return False
        if service != self.service:
            return False
        if self.operation == "writes":
            return is_write(key)
        return fnmatch.fnmatchcase(operation, self.operation)


def parse(spec: str) -> Fault:
    form = "[Step/]service:Operation=kind[:probability[:limit]]"
    target, sep, action = spec.partition("=")
    if not sep:
        raise FaultSpecError(f"fault {spec!r}: expected {form}")
    step, _, call = target.rpartition("/")
    service, colon, operation = call.partition(":")
    if not colon or not service or not operation:
        raise FaultSpecError(f"fault {spec!r}: the call must be service:Operation (e.g. iam:AttachRolePolicy)")
    kind, *numbers = action.split(":")
    if kind not in KINDS:
        raise FaultSpecError(f"fault {spec!r}: kind must be one of {', '.join(KINDS)}")
    try:
        probability = float(numbers[0]) if numbers else 1.0
        limit = int(numbers[1]) if len(numbers) > 1 else None
    except ValueError as exc:
        raise FaultSpecError(f"fault {spec!r}: probability is a number 0-1, limit a whole number") from exc
    if not 0 <= probability <= 1 or len(numbers) > 2:
        raise FaultSpecError(f"fault {spec!r}: expected {form}")
    return Fault(step or None, service, operation, kind, probability, limit)


class FaultPlan:
    """The faults of one run; `before_call` is installed on the emulator's dispatcher."""

    def __init__(self, specs: list[str], seed: int | None = None) -> None:
        self.faults = [parse(s) for s in specs]
        self._random = random.Random(seed)  # noqa: S311 - chance of a fault, not a secret
        self._lock = threading.Lock()
        self.injected: list[dict[str, Any]] = []

    def before_call(self, step: str, key: str, params: dict[str, Any]) -> None:
        for fault in self.faults:
            if not fault.applies(step, key):
                continue
            with self._lock:
                if fault.limit is not None and fault.injected >= fault.limit:
                    continue
                if self._random.random() >= fault.probability:
                    continue
                fault.injected += 1
                self.injected.append({"step": step, "call": key, "kind": fault.kind})
            status, code, message = KINDS[fault.kind]
            raise ClientError(
                {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                key.partition(":")[2],
            )
