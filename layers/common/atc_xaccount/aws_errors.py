"""Translate botocore errors into the project's named exceptions.

The state machine retries and catches by exception name, so every AWS failure leaves
the layer as one of `errors.py`'s classes, with the original error chained.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import ClientError

from atc_xaccount import bootstrap_names
from atc_xaccount.errors import (
    AutomationRoleDenied,
    AwsOperationFailed,
    IamConcurrentModification,
    IamPropagationDelay,
    IamThrottled,
)

T = TypeVar("T")

THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})

#: AWS's denial text: "User: <arn> is not authorized to perform: <action> on resource: <resource> because ...".
_DENIAL = re.compile(
    r"not authorized to perform: (?P<action>[\w-]+:[\w*]+)"
    r"(?: on resource: \"?(?P<resource>(?:(?:role|policy|user) )?[^\s\"]+)\"?)?"
)
_NAMED = re.compile(
    r"^(?:(?P<kind>role|policy|user) )?(?:arn:[^:]+:iam::\d*:(?P<arnkind>role|policy|user)/(?:.*/)?)?(?P<name>[^/\s]+)$"
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in {"NoSuchEntity", "ResourceNotFoundException", "NoSuchEntityException"}


def translate(exc: ClientError, operation: str, account: str) -> Exception:
    """Map one ClientError to the named exception the ASL retries or catches."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code in THROTTLING_CODES:
        return IamThrottled(operation, account)
    if code == "ConcurrentModification":
        return IamConcurrentModification(operation, account)
    if code == "MalformedPolicyDocument" and "invalid principal" in message.lower():
        return IamPropagationDelay(operation, account)
    if code in ACCESS_DENIED_CODES and account.isdigit():
        # Every call in a target account is made as its automation role.
        return automation_role_denied(operation, account, message)
    return AwsOperationFailed(operation, account, code, message)


@contextmanager
def aws_call(operation: str, account: str) -> Iterator[None]:
    """Run one AWS call; re-raise its ClientError as a named project error."""
    try:
        yield
    except ClientError as exc:
        raise translate(exc, operation, account) from exc


# --- bounded retries of IAM's eventual consistency (issue 9 item 4, issue 10 item 2) -----
#
# One retry layer per concern (STYLE, issue 16 item 6): throttling and transient service
# errors are retried by botocore's standard mode on every call (sessions.CLIENT_RETRIES)
# and by the state machines' retriers (IamThrottled, ...), never here. A step retries only
# IAM's eventual consistency, on the one call that follows a create or a detach, and only
# while the Lambda has time left; the last such answer is raised as IamPropagationDelay,
# which the state machines retry with their own backoff.

#: Environment variable with the first backoff in seconds; the emulator sets it to 0 so a
#: retried call does not sleep for real (Lambda leaves it unset: AWS's delays apply).
RETRY_BASE_ENV = "ATC_RETRY_BASE_SECONDS"
DEFAULT_RETRY_BASE_SECONDS = 0.25
RETRY_CAP_SECONDS = 2.0
#: Attempts per call: with full jitter at most 0.25+0.5+1+2x6 = 13.75 s of sleep in AWS.
RETRY_ATTEMPTS = 10
#: A retry that would leave the Lambda less than this many seconds is not made.
RETRY_RESERVE_SECONDS = 5.0


@dataclass(frozen=True)
class Transient:
    """An answer that is transient for one call: its code, and a message fragment if only some are."""

    code: str
    message: str = ""
    #: What the answer means, for the IamPropagationDelay the last one becomes.
    meaning: str = ""

    def matches(self, exc: ClientError) -> bool:
        text = str(exc.response.get("Error", {}).get("Message", "")).lower()
        return error_code(exc) == self.code and self.message.lower() in text


#: IAM's eventual consistency, where it is known to be transient (DESIGN section 6):
#: a just-created policy not yet attachable, a just-detached one not yet deletable, a
#: just-created principal not yet valid in a trust policy.
JUST_CREATED_POLICY = Transient("NoSuchEntity", meaning="a policy created a moment ago is not attachable yet")
JUST_DETACHED_POLICY = Transient("DeleteConflict", meaning="a policy detached a moment ago still counts as attached")
JUST_CREATED_PRINCIPAL = Transient("MalformedPolicyDocument", "invalid principal")

_random = random.SystemRandom()
#: When the current Lambda invocation ends (time.monotonic()), if a handler said so.
_deadline: ContextVar[float | None] = ContextVar("atc_xaccount_deadline", default=None)


def set_deadline(remaining_millis: int | float | None) -> None:
    """The Lambda's remaining time (its context's `get_remaining_time_in_millis()`)."""
    _deadline.set(None if remaining_millis is None else time.monotonic() + float(remaining_millis) / 1000)


def seconds_left() -> float | None:
    """Seconds until the Lambda's deadline; None when no handler set one (the CLI, tests)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def backoff_delays(attempts: int = RETRY_ATTEMPTS) -> list[float]:
    """Full-jitter exponential delays between `attempts` tries, capped (AWS architecture blog)."""
    base = float(os.environ.get(RETRY_BASE_ENV, DEFAULT_RETRY_BASE_SECONDS))
    return [_random.uniform(0, min(RETRY_CAP_SECONDS, base * 2**n)) for n in range(attempts - 1)]


def retried(
    operation: str,
    account: str,
    call: Callable[[], T],
    *,
    also: Iterable[Transient] = (),
    attempts: int = RETRY_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run one AWS call, retrying the eventual-consistency answers `also` names, then translate.

    A retry is made only while the Lambda keeps RETRY_RESERVE_SECONDS after its sleep. The
    last eventual-consistency answer is raised as IamPropagationDelay (the state machines
    retry it later); anything else is raised at once as the named project error.
    """
    extra = tuple(also)
    delays = backoff_delays(attempts)
    for delay in [*delays, None]:
        try:
            return call()
        except ClientError as exc:
            transient = next((t for t in extra if t.matches(exc)), None)
            if transient is None:
                raise translate(exc, operation, account) from exc
            left = seconds_left()
            if delay is None or (left is not None and left - delay < RETRY_RESERVE_SECONDS):
                raise IamPropagationDelay(operation, account, transient.meaning or None) from exc
            sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


def automation_role_denied(operation: str, account: str, message: str) -> AutomationRoleDenied:
    """The denial, with the bootstrap parameter (and value) that would have allowed it."""
    found = _DENIAL.search(message)
    action = found.group("action") if found else operation
    resource = (found.group("resource") if found else None) or "its resource"
    named = _NAMED.match(resource)
    parameter = value = None
    if named is not None:
        kind, name = named.group("kind") or named.group("arnkind"), named.group("name")
        parameter = bootstrap_names.parameter_for(kind, account, name)
        value = name if parameter else None
    return AutomationRoleDenied(account, action, resource, parameter, value, message)
