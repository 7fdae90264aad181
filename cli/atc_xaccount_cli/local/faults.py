"""Fault injection into the steps' AWS calls (`local run --faults SPEC`).

A spec is `[Step/]service:Operation=kind[:probability[:limit]]`, e.g.
`iam:UpdateAssumeRolePolicy=throttle:0.3`, `iam:AttachRolePolicy=fail:1`,
`MergeTrust/iam:GetRole=fail`, `iam:writes=throttle:0.3`. `Operation` may be a glob, or
`writes` for every call of that service that changes state. Each kind raises the error
AWS itself returns, so the workflow's Retry/Catch handle it exactly as in AWS.

`consistency` is IAM's eventual consistency (issue 10 item 2): for the next `limit`
(default 1) calls on each resource, a policy created in this run is not attachable yet
(`AttachRolePolicy` -> NoSuchEntity), a policy detached in this run is still counted as
attached (`DeletePolicy` -> DeleteConflict, and `GetPolicy` shows its `AttachmentCount`
one higher: `after_call`), and a role's trust policy naming a principal is refused with
"Invalid principal in policy" (`UpdateAssumeRolePolicy`: every role of a world is as new
as it gets when the run starts). Other calls it names are not affected.
E.g. `iam:*=consistency:1:2`.

`stale` is IAM's eventual consistency for reads (issue 18): for the next `limit` (default
1) reads of a document after a step wrote it, GetRole, GetPolicy and GetPolicyVersion
answer as before that write (`aws_time.StaleReads`), e.g. `iam:GetRole=stale:1:2`.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount_cli.local.aws_time import StaleReads
from atc_xaccount_cli.local.calls import is_write

#: kind -> (HTTP status, AWS error code, message)
KINDS: dict[str, tuple[int, str, str]] = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "conflict": (409, "ConcurrentModification", "Concurrent modification of the entity; retry"),
    "propagation": (400, "MalformedPolicyDocument", "Invalid principal in policy: the principal is not yet visible"),
    "denied": (403, "AccessDenied", "User is not authorized to perform this operation"),
    "fail": (500, "ServiceFailure", "The request processing has failed because of an unknown error"),
    "limit": (409, "LimitExceeded", "Cannot exceed quota"),
    "consistency": (400, "EventualConsistency", "see CONSISTENCY"),
    "stale": (200, "StaleRead", "see aws_time.StaleReads: an answer, not an error"),
}

#: What IAM answers, right after a create or a detach, to the call that follows it.
CONSISTENCY: dict[str, tuple[int, str, str]] = {
    "AttachRolePolicy": (404, "NoSuchEntity", "Policy {} does not exist or is not attachable."),
    "DeletePolicy": (409, "DeleteConflict", "Cannot delete a policy attached to entities."),
    "UpdateAssumeRolePolicy": (400, "MalformedPolicyDocument", "Invalid principal in policy: {}"),
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
        #: Policy names created and policy ARNs detached in this run (for `consistency`).
        self._created: set[str] = set()
        self._detached: set[str] = set()
        self._window: dict[tuple[str, str], int] = {}
        self.stale = StaleReads([f for f in self.faults if f.kind == "stale"], self._chance, self._stale_read)

    def _chance(self) -> float:
        return self._random.random()

    def _stale_read(self, step: str, key: str) -> None:
        with self._lock:
            self.injected.append({"step": step, "call": key, "kind": "stale"})

    def around_call(self, step: str, client: Any, key: str, params: dict[str, Any], proceed: Any, original: Any) -> Any:
        """Installed as the dispatcher's `around_call`: the `stale` faults age IAM's answers."""
        if not self.stale.faults:
            return proceed()
        return self.stale.around(step, client, key, params, proceed, original)

    def before_call(self, step: str, key: str, params: dict[str, Any]) -> None:
        self._observe(key, params)
        for fault in self.faults:
            if not fault.applies(step, key):
                continue
            if fault.kind == "consistency":
                self._inconsistent(fault, step, key, params)
                continue
            if fault.kind == "stale":
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
                {"Error": {"Code": code, "Message": message}, "ResponseMetadata": _metadata(status)},
                key.partition(":")[2],
            )

    def after_call(self, step: str, key: str, params: dict[str, Any], response: Any) -> Any:
        """A detached policy's GetPolicy still counts the attachment, inside the consistency window."""
        arn = str(params.get("PolicyArn", ""))
        if key != "iam:GetPolicy" or arn not in self._detached or not isinstance(response, dict):
            return response
        for fault in self.faults:
            if fault.kind != "consistency" or not fault.applies(step, key):
                continue
            with self._lock:
                seen = self._window.get(("GetPolicy", arn), 0)
                if seen >= (fault.limit or 1) or self._random.random() >= fault.probability:
                    return response
                self._window[("GetPolicy", arn)] = seen + 1
                self.injected.append({"step": step, "call": key, "kind": fault.kind})
            policy = dict(response.get("Policy") or {})
            policy["AttachmentCount"] = int(policy.get("AttachmentCount", 0)) + 1
            return {**response, "Policy": policy}
        return response

    def _observe(self, key: str, params: dict[str, Any]) -> None:
        """Remember what was just created or detached (the call is about to be made)."""
        with self._lock:
            if key == "iam:CreatePolicy":
                self._created.add(str(params.get("PolicyName", "")).lower())
            elif key == "iam:DetachRolePolicy":
                self._detached.add(str(params.get("PolicyArn", "")))

    def _inconsistent(self, fault: Fault, step: str, key: str, params: dict[str, Any]) -> None:
        operation = key.partition(":")[2]
        if key.partition(":")[0] != "iam" or operation not in CONSISTENCY:
            return
        arn = str(params.get("PolicyArn", ""))
        resource = {
            "AttachRolePolicy": arn if arn.rpartition("/")[2].lower() in self._created else "",
            "DeletePolicy": arn if arn in self._detached else "",
            "UpdateAssumeRolePolicy": str(params.get("RoleName", "")),
        }[operation]
        if not resource:
            return
        with self._lock:
            seen = self._window.get((operation, resource), 0)
            if seen >= (fault.limit or 1) or self._random.random() >= fault.probability:
                return
            self._window[(operation, resource)] = seen + 1
            self.injected.append({"step": step, "call": key, "kind": fault.kind})
        status, code, message = CONSISTENCY[operation]
        raise ClientError(
            {
                "Error": {"Code": code, "Message": message.format(resource)},
                "ResponseMetadata": _metadata(status),
            },
            operation,
        )


def _metadata(status: int) -> dict[str, Any]:
    """What every AWS error response carries (Step Functions' integrations quote its RequestId)."""
    import uuid

    return {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())}
