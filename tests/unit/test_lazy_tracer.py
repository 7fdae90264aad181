"""The handlers' tracer: the X-Ray SDK is loaded only where Powertools would really trace."""

from __future__ import annotations

import subprocess
import sys

import pytest

from atc_xaccount.observability import NoopTracer, Tracer, tracing_enabled


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),
    ],
)
def test_tracing_follows_powertools_rule(environ: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(environ) is enabled


def test_noop_tracer_decorators_return_the_handler_itself() -> None:
    tracer = Tracer()  # not in Lambda: off

    def handler(event: dict[str, str], context: object) -> dict[str, str]:
        return {"got": event["x"]}

    assert isinstance(tracer, NoopTracer)
    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert tracer.capture_method(capture_error=False)(handler)({"x": "1"}, None) == {"got": "1"}
    tracer.put_annotation("cluster_id", "c1")
    tracer.put_metadata("k", {"v": 1})


def _probe(environ: dict[str, str]) -> str:
    code = (
        "import sys\n"
        "from atc_xaccount.observability import Tracer\n"
        "t = Tracer()\n"
        "print(type(t).__module__, 'aws_xray_sdk' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": ":".join(sys.path), "AWS_REGION": "us-east-1", **environ},
    )
    return out.stdout.strip()


def test_in_lambda_with_tracing_on_it_is_powertools_tracer() -> None:
    environ = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"}
    assert _probe(environ) == "aws_lambda_powertools.tracing.tracer True"


def test_in_lambda_with_tracing_disabled_the_sdk_is_never_imported() -> None:
    assert _probe({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}) == (
        "atc_xaccount.observability False"
    )
