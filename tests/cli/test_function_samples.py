"""events/functions/<Function>.json: one sample input per Lambda step, for `sam local invoke -e`.

Recorded from sample runs (`python -m tests.cli.capture_golden functions`); this test keeps
them the input the state machines give: one per function of template.yaml, and each with
exactly the keys of the `Parameters` of a Task state that invokes that function.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from atc_xaccount_cli.local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "functions"
_FUNCTION = re.compile(r"^\$\{(?P<function>\w+Function)Arn\}$")


def functions() -> list[str]:
    resources = load_yaml(ROOT / "template.yaml")["Resources"]
    return sorted(k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function")


def _tasks(states: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in states.values():
        if state.get("Type") == "Task":
            found.append(state)
        for inner in [state.get("Iterator"), state.get("ItemProcessor"), *(state.get("Branches") or [])]:
            if isinstance(inner, dict):
                found.extend(_tasks(inner.get("States") or {}))
    return found


def inputs() -> dict[str, list[set[str]]]:
    """Function -> the key sets its Task states pass it (`.$` stripped)."""
    found: dict[str, list[set[str]]] = {}
    for path in sorted((ROOT / "statemachine").glob("*.asl.json")):
        for task in _tasks(json.loads(path.read_text())["States"]):
            match = _FUNCTION.match(str(task.get("Resource", "")))
            if match:
                keys = {k.removesuffix(".$") for k in task.get("Parameters") or {}}
                found.setdefault(match["function"], []).append(keys)
    return found


def test_every_function_has_a_sample_and_nothing_else_does():
    assert sorted(p.stem for p in SAMPLES.glob("*.json")) == functions()


def test_each_sample_is_the_input_a_state_gives_its_function():
    given = inputs()
    for function in functions():
        sample = json.loads((SAMPLES / f"{function}.json").read_text())
        assert set(sample) in given[function], (function, sorted(sample), given[function])
