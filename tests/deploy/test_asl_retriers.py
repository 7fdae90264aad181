"""Every Lambda Task of every workflow retries Lambda's transient errors, all of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.conftest import ROOT

#: Lambda's transient errors as Step Functions names them (AWS: "Handling errors in Step
#: Functions workflows", the Lambda retrier the console adds): a function that timed out
#: on the client side (ClientExecutionTimeoutException) is as retryable as a throttle.
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
}
MACHINES = sorted((ROOT / "statemachine").glob("*.asl.json"))


def lambda_tasks(states: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        resource = state.get("Resource", "")
        if state.get("Type") == "Task" and (resource.endswith("FunctionArn}") or ":lambda:invoke" in resource):
            yield f"{where}.{name}", state
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from lambda_tasks(state[key]["States"], f"{where}.{name}")
        for i, branch in enumerate(state.get("Branches", [])):
            yield from lambda_tasks(branch["States"], f"{where}.{name}[{i}]")


def test_every_machine_has_lambda_tasks():
    assert {p.name for p in MACHINES} == {
        "audit.asl.json",
        "bulk.asl.json",
        "offboard.asl.json",
        "onboard.asl.json",
        "rotate.asl.json",
    }
    for path in MACHINES:
        assert list(lambda_tasks(json.loads(path.read_text(encoding="utf-8"))["States"], path.stem))


@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.stem)
def test_every_lambda_task_retries_every_transient_lambda_error(path):
    definition = json.loads(path.read_text(encoding="utf-8"))
    for where, task in lambda_tasks(definition["States"], path.stem):
        retried = {error for retrier in task.get("Retry", []) for error in retrier["ErrorEquals"]}
        missing = LAMBDA_TRANSIENT - retried
        assert not missing, f"{where} does not retry {sorted(missing)}"
