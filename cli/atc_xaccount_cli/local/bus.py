"""The template's EventBridge rules on the emulator's bus, delivering to their state machines.

`local run` routes each event file itself (`Emulator.route`); `local serve` must deliver
what an operator puts on the bus (`register --via events`) as AWS does: a rule whose
pattern matches starts its state machine with the whole event as input, under a name
EventBridge chooses (a fresh one per delivery). moto 5.2.5's EventBridge delivers to logs,
SQS, SNS and other buses only, not to Step Functions: `delivering()` adds that target.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from moto.events import models as events_models
from moto.stepfunctions.responses import get_backend

if TYPE_CHECKING:
    from atc_xaccount_cli.local.engine import Emulator


def install_rules(emulator: Emulator) -> list[str]:
    """One rule per EventBridge event source of each state machine in template.yaml."""
    events = emulator.client("events")
    bus = emulator.app.parameters.get("EventBusName", "default")
    names = []
    for (machine, rule), pattern in sorted(emulator.rule_patterns().items()):
        name = f"{machine}-{rule}"
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        target = {"Id": "StateMachine", "Arn": emulator.state_machine_arns[machine]}
        events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
        names.append(name)
    return names


@contextmanager
def delivering() -> Iterator[None]:
    """Rules with a Step Functions target start an execution of it, as EventBridge does."""
    original = events_models.Rule.send_to_targets

    def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        machines = [t for t in rule.targets if str(t["Arn"]).split(":")[2:3] == ["states"]]
        others = [t for t in rule.targets if t not in machines]
        if others:  # moto raises NotImplementedError for a target type it does not know
            shallow = copy.copy(rule)
            shallow.targets = others
            original(shallow, event, transform_input)
        if not machines or not rule.event_pattern.matches_event(event):
            return
        delivered = as_delivered(event)
        for target in machines:
            backend = get_backend(rule.account_id, rule.region_name)  # the executing parser's
            backend.start_execution(str(target["Arn"]), name=str(uuid.uuid4()), execution_input=json.dumps(delivered))

    with patch.object(events_models.Rule, "send_to_targets", send_to_targets):
        yield


def as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it: `time` in ISO 8601, no moto bookkeeping (`ingestion-time`)."""
    delivered = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(delivered.get("time"), (int, float)):
        stamp = datetime.fromtimestamp(float(delivered["time"]), tz=UTC)
        delivered["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return delivered
