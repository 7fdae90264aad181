"""Which bootstrap parameter governs which role or policy, for the current step.

An AccessDenied of a target account's automation role means its bootstrap stack instance
was deployed for other names; aws_errors turns it into `AutomationRoleDenied` naming the
parameter to set. The names come from the step's request, set once per invocation here
(no botocore import: the Lambda path stays light until a step makes an AWS call).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar

#: A bootstrap parameter of one target account: (parameter, resource kind, account, name).
BootstrapName = tuple[str, str, str, str]

_expected: ContextVar[tuple[BootstrapName, ...]] = ContextVar("bootstrap_names", default=())


def expect(names: Iterable[BootstrapName]) -> None:
    """The names the current step's request expects each account's stack instance to allow."""
    _expected.set(tuple(names))


def expected() -> tuple[BootstrapName, ...]:
    return _expected.get()


def parameter_for(kind: str, account: str, name: str) -> str | None:
    """The parameter whose value is `name` for a `kind` ("role"/"policy") of `account`, if any."""
    for parameter, candidate_kind, candidate_account, candidate_name in _expected.get():
        if (candidate_kind, candidate_account, candidate_name.lower()) == (kind, account, name.lower()):
            return parameter
    return None
