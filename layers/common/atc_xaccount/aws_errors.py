"""Translate botocore errors into the project's named exceptions.

The state machine retries and catches by exception name, so every AWS failure leaves
the layer as one of `errors.py`'s classes, with the original error chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from atc_xaccount.errors import (
    AwsOperationFailed,
    IamConcurrentModification,
    IamPropagationDelay,
    IamThrottled,
)

THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})


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
    return AwsOperationFailed(operation, account, code, message)


@contextmanager
def aws_call(operation: str, account: str) -> Iterator[None]:
    """Run one AWS call; re-raise its ClientError as a named project error."""
    try:
        yield
    except ClientError as exc:
        raise translate(exc, operation, account) from exc
