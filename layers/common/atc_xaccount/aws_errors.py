"""Translate botocore errors into the project's named exceptions.

The state machine retries and catches by exception name, so every AWS failure leaves
the layer as one of `errors.py`'s classes, with the original error chained.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from atc_xaccount import bootstrap_names
from atc_xaccount.errors import (
    AutomationRoleDenied,
    AwsOperationFailed,
    IamConcurrentModification,
    IamPropagationDelay,
    IamThrottled,
)

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
