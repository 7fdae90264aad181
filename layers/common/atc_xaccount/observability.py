"""The handlers' tracer: Powertools' `Tracer` when X-Ray SDK tracing is on, a no-op otherwise.

Constructing Powertools' `Tracer` imports the X-Ray SDK, whose module-level recorder
builds botocore X-Ray clients: ~120 ms of every cold start, paid even when tracing is
disabled. Here the SDK is imported only when the tracer will really trace, decided by
Powertools' own rule (in Lambda, unless `POWERTOOLS_TRACE_DISABLED` is true), and the
handlers keep the Powertools decorator API either way. Lambda's and Step Functions'
active tracing need no SDK in the function (bench/README.md, section 3).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer as PowertoolsTracer

F = TypeVar("F", bound=Callable[..., Any])

_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Powertools' rule: tracing runs in Lambda (not SAM local, not Chalice) unless disabled."""
    if environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    in_lambda = bool(environ.get("LAMBDA_TASK_ROOT"))
    emulated = bool(environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"))
    return in_lambda and not emulated


class NoopTracer:
    """Powertools' `Tracer` surface with nothing behind it: decorators return the function."""

    disabled = True

    def capture_lambda_handler(
        self, lambda_handler: F | None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Any:
        return _passthrough(lambda_handler)

    def capture_method(
        self, method: F | None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Any:
        return _passthrough(method)

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        return None


def _passthrough(function: F | None) -> Any:
    """`@decorator` and `@decorator(...)` alike: the function itself, unwrapped."""
    if function is None:
        return functools.partial(_passthrough)
    return function


def Tracer(**options: Any) -> PowertoolsTracer | NoopTracer:
    """A Powertools `Tracer(**options)` where tracing is on; a `NoopTracer` where it is off.

    Named like the class it stands in for, so a handler reads `tracer = Tracer()`.
    """
    disabled = options.get("disabled")
    if disabled is True or (disabled is None and not tracing_enabled()):
        return NoopTracer()
    from aws_lambda_powertools import Tracer as PowertoolsTracer

    return PowertoolsTracer(**options)
