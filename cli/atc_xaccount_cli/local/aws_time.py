"""AWS's time in the emulator: stale IAM reads, Secrets Manager's deletion lag, AWS-timed calls.

moto answers every read with the latest write, deletes a secret the moment it is asked to
and answers in microseconds. AWS does none of that (DESIGN.md section 8), and the races
and queueing that follow only show when the emulator does as AWS does:

- `StaleReads` (the `stale` fault kind, `iam:GetRole=stale:1:2`): for the next `limit`
  reads of a document after a step wrote it, IAM answers with the document as it was
  before that write: GetRole's `AssumeRolePolicyDocument`, GetPolicy's `DefaultVersionId`
  (a policy created by that write does not exist yet), GetPolicyVersion's `IsDefault`.
- `secret_deletion_lag` (on in every emulator): after `DeleteSecret` with
  `ForceDeleteWithoutRecovery`, AWS deletes asynchronously; for the next few calls on
  that name GetSecretValue, PutSecretValue and CreateSecret answer
  `InvalidRequestException` with AWS's own messages.
- `AwsTiming`: each step call and each Lambda invocation takes about as long as on AWS,
  and the propagation wait is the template's default, so contention shows in real seconds.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from moto.iam.models import get_account_id_from
from moto.secretsmanager import models as secrets_models
from moto.secretsmanager.exceptions import InvalidRequestException

#: Calls on a force-deleted secret's name that still see it scheduled for deletion.
DELETION_LAG_CALLS = 2
#: AWS's answers while a secret is being deleted (GetSecretValue / PutSecretValue, CreateSecret).
MARKED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion."
SCHEDULED_FOR_DELETION = (
    "You can't create this secret because a secret with this name is already scheduled for deletion."
)

#: The reads `stale` can age, and the writes that make a document's previous version.
STALE_READS = frozenset({"iam:GetRole", "iam:GetPolicy", "iam:GetPolicyVersion"})
ROLE_WRITES = frozenset({"iam:UpdateAssumeRolePolicy"})
POLICY_WRITES = frozenset({"iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"})

Proceed = Callable[[], Any]
Original = Callable[[Any, str, dict[str, Any]], Any]


def _account_of(client: Any) -> str:
    credentials = client._request_signer._credentials
    return str(get_account_id_from(credentials.get_frozen_credentials().access_key))


@dataclass
class _Previous:
    """A document as it was before the last write: a trust policy, or a policy's default version."""

    value: Any
    remaining: dict[int, int] = field(default_factory=dict)


class StaleReads:
    """IAM reads that return the version before the last write, `limit` times per write.

    `faults` are the `stale` faults of a plan (objects with `applies(step, key)`,
    `probability`, `limit`); `chance` draws a number in [0, 1).
    """

    def __init__(self, faults: list[Any], chance: Callable[[], float], record: Callable[[str, str], None]) -> None:
        self.faults = faults
        self._chance = chance
        self._record = record
        self._lock = threading.Lock()
        self._previous: dict[tuple[str, str, str], _Previous] = {}

    def around(
        self, step: str, client: Any, key: str, params: dict[str, Any], proceed: Proceed, original: Original
    ) -> Any:
        if key in ROLE_WRITES or key in POLICY_WRITES:
            return self._write(client, key, params, proceed, original)
        if key not in STALE_READS:
            return proceed()
        resource = self._resource(client, key, params)
        with self._lock:
            previous = self._previous.get(resource) if resource else None
            fault = self._due(step, key, previous)
        if previous is None or fault is None:
            return proceed()
        self._record(step, key)
        return self._aged(client, key, params, previous.value, proceed, original)

    def _due(self, step: str, key: str, previous: _Previous | None) -> Any:
        """The fault that ages this read (consuming one of its reads), or None; under the lock."""
        if previous is None:
            return None
        for index, fault in enumerate(self.faults):
            if not fault.applies(step, key) or previous.remaining.get(index, 0) <= 0:
                continue
            if self._chance() >= fault.probability:
                continue
            previous.remaining[index] -= 1
            return fault
        return None

    @staticmethod
    def _resource(client: Any, key: str, params: dict[str, Any]) -> tuple[str, str, str] | None:
        account = _account_of(client)
        if key in ("iam:GetRole", *ROLE_WRITES):
            return account, "role", str(params.get("RoleName", "")).lower()
        if key == "iam:CreatePolicy":
            return account, "policy", str(params.get("PolicyName", "")).lower()
        arn = str(params.get("PolicyArn", ""))
        return (account, "policy", arn.rpartition("/")[2].lower()) if arn else None

    def _write(self, client: Any, key: str, params: dict[str, Any], proceed: Proceed, original: Original) -> Any:
        resource = self._resource(client, key, params)
        before: Any = None
        try:
            if key in ROLE_WRITES:
                before = original(client, "GetRole", {"RoleName": params["RoleName"]})["Role"][
                    "AssumeRolePolicyDocument"
                ]
            elif key != "iam:CreatePolicy":
                before = original(client, "GetPolicy", {"PolicyArn": params["PolicyArn"]})["Policy"]["DefaultVersionId"]
        except ClientError:
            before = None
        response = proceed()
        if key == "iam:CreatePolicyVersion" and not params.get("SetAsDefault"):
            return response  # the default version did not change
        if resource is not None:
            limits = {i: int(f.limit or 1) for i, f in enumerate(self.faults)}
            with self._lock:
                self._previous[resource] = _Previous(copy.deepcopy(before), limits)
        return response

    @staticmethod
    def _aged(client: Any, key: str, params: dict[str, Any], before: Any, proceed: Proceed, original: Original) -> Any:
        operation = key.partition(":")[2]
        if key == "iam:GetRole":
            response = copy.deepcopy(proceed())
            response["Role"]["AssumeRolePolicyDocument"] = copy.deepcopy(before)
            return response
        if before is None:  # created by the last write: not visible yet
            message = f"Policy {params.get('PolicyArn')} was not found."
            error = {"Error": {"Code": "NoSuchEntity", "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 404}}
            raise ClientError(error, operation)
        response = copy.deepcopy(proceed())
        if key == "iam:GetPolicy":
            response["Policy"]["DefaultVersionId"] = before
        else:
            response["PolicyVersion"]["IsDefault"] = response["PolicyVersion"]["VersionId"] == before
        return response


class _DeletionLag:
    """Force-deleted secrets that AWS still has scheduled for deletion, by (account, region, name)."""

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, str, str], int] = {}

    def key(self, backend: Any, secret_id: str) -> tuple[str, str, str]:
        name = secret_id
        if secret_id.startswith("arn:"):
            # arn:...:secret:NAME-XXXXXX: the name without AWS's six random characters.
            name = secret_id.split(":secret:", 1)[1].rsplit("-", 1)[0]
        return backend.account_id, backend.region_name, name

    def refuse(self, backend: Any, secret_id: str, message: str) -> None:
        key = self.key(backend, secret_id)
        with self.lock:
            left = self.pending.get(key, 0)
            if left <= 0:
                self.pending.pop(key, None)
                return
            self.pending[key] = left - 1
        raise InvalidRequestException(message)


@contextmanager
def secret_deletion_lag(calls: int = DELETION_LAG_CALLS) -> Iterator[None]:
    """Patch moto's Secrets Manager so a force-deleted name stays scheduled for `calls` calls."""
    if calls <= 0:
        yield
        return
    lag = _DeletionLag(calls)
    backend_cls = secrets_models.SecretsManagerBackend
    originals = {
        name: getattr(backend_cls, name)
        for name in ("delete_secret", "get_secret_value", "create_secret", "put_secret_value")
    }

    def delete_secret(
        self: Any, secret_id: str, recovery_window_in_days: Any, force_delete_without_recovery: bool
    ) -> Any:
        with lag.lock:
            pending = lag.pending.get(lag.key(self, secret_id), 0) > 0
        if pending and force_delete_without_recovery:
            # AWS accepts a second forced deletion of a secret it is still deleting.
            arn = f"arn:aws:secretsmanager:{self.region_name}:{self.account_id}:secret:{secret_id}"
            return arn, secret_id, time.time()
        existed = self._is_valid_identifier(secret_id)
        result = originals["delete_secret"](self, secret_id, recovery_window_in_days, force_delete_without_recovery)
        if existed and force_delete_without_recovery:
            with lag.lock:
                lag.pending[lag.key(self, result[1])] = lag.calls
        return result

    def get_secret_value(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        lag.refuse(self, secret_id, MARKED_FOR_DELETION)
        return originals["get_secret_value"](self, secret_id, *args, **kwargs)

    def put_secret_value(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        lag.refuse(self, secret_id, MARKED_FOR_DELETION)
        return originals["put_secret_value"](self, secret_id, *args, **kwargs)

    def create_secret(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        lag.refuse(self, name, SCHEDULED_FOR_DELETION)
        return originals["create_secret"](self, name, *args, **kwargs)

    patched = {
        "delete_secret": delete_secret,
        "get_secret_value": get_secret_value,
        "put_secret_value": put_secret_value,
        "create_secret": create_secret,
    }
    for name, function in patched.items():
        setattr(backend_cls, name, function)
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(backend_cls, name, function)


#: Seconds one call takes on AWS, by service (a step's round trip from Lambda in the same
#: region; IAM writes are slower than its reads). With these, an uncontended onboarding's
#: steps take ~4 s besides the propagation wait: the ~14 s issue 18 measured with 10 s of it.
CALL_SECONDS: dict[str, float] = {
    "iam:read": 0.08,
    "iam:write": 0.25,
    "sts": 0.1,
    "secretsmanager": 0.04,
    "dynamodb": 0.012,
    "s3": 0.03,
    "access-analyzer": 0.3,
    "default": 0.05,
}
#: A warm Lambda invocation's own overhead (Step Functions -> Lambda -> back).
INVOKE_SECONDS = 0.05


@dataclass(frozen=True)
class AwsTiming:
    """How long AWS takes: each step call sleeps its service's figure (scaled by `scale`)."""

    scale: float = 1.0
    calls: dict[str, float] = field(default_factory=lambda: dict(CALL_SECONDS))
    invoke: float = INVOKE_SECONDS

    def call_seconds(self, key: str, is_write: bool) -> float:
        service = key.partition(":")[0]
        if service == "iam":
            service = "iam:write" if is_write else "iam:read"
        return self.scale * self.calls.get(service, self.calls["default"])

    def invoke_seconds(self) -> float:
        return self.scale * self.invoke
