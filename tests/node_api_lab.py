"""One emulator for a module of Node API tests: each case has its own accounts, cluster and Node API.

The sample world and events with a Node API (`events/*-node-api.json`) are moved to the
case's accounts, bucket, Node API URL and node user secret, so cases never see each
other's state and the emulator's start-up is paid once.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from atc_xaccount_cli.local.engine import AUTOMATION_ACCOUNT, Emulator, ExecutionResult
from tests.leastpriv.conftest import ONBOARD, Case, load

PASSWORD = "emulated-node-password"


@dataclass
class NodeCase:
    case: Case

    @property
    def cluster(self) -> str:
        return self.case.cluster

    @property
    def url(self) -> str:
        return f"https://{self.cluster}.example:9092"

    @property
    def secret_name(self) -> str:
        return f"atc-node-api/{self.cluster}"

    @property
    def node_api(self) -> dict[str, Any]:
        arn = f"arn:aws:secretsmanager:us-east-1:{AUTOMATION_ACCOUNT}:secret:{self.secret_name}"
        return {"url": self.url, "credentialsSecretArn": arn, "path": "/"}

    def world(self, *, acl: tuple[str, ...] = ("key_master",), **api: Any) -> dict[str, Any]:
        base = load("sample-world-node-api.json")
        world = self.case.world({"accounts": {a: s for a, s in base["accounts"].items() if a != AUTOMATION_ACCOUNT}})
        user = json.dumps({"username": "node_admin", "password": PASSWORD})
        world["accounts"][AUTOMATION_ACCOUNT] = {"secrets": {self.secret_name: user}}
        world["nodeApis"] = {
            self.url: {
                "nodeRole": f"arn:aws:iam::{self.case.cm}:role/atc-node",
                "users": {"node_admin": {"password": PASSWORD, "acl": list(acl)}},
                **api,
            }
        }
        return world

    def registered(self, **detail: Any) -> dict[str, Any]:
        return self.case.event(load("cluster-registered-node-api.json"), **{"nodeApi": self.node_api, **detail})

    def deregistered(self) -> dict[str, Any]:
        return self.case.event(load("cluster-deregistered-node-api.json"), nodeApi=self.node_api)


class NodeLab:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._cases = 0

    def case(self) -> NodeCase:
        self._cases += 1
        n = self._cases
        return NodeCase(Case(f"node-{n}", f"{110000000000 + n}", f"{210000000000 + n}"))

    def seed(self, case: NodeCase, **api: Any) -> NodeCase:
        self.emulator.seed(case.world(**api))
        return case

    def run(self, event: dict[str, Any], machine: str = ONBOARD) -> ExecutionResult:
        return self.emulator.follow(self.emulator.start(event, machine))

    def api(self, case: NodeCase) -> dict[str, Any]:
        """The emulated Node API of the case, as it is now (a copy)."""
        return copy.deepcopy(self.emulator.node_apis.apis[case.url])

    def keys(self, case: NodeCase) -> dict[str, Any]:
        return self.api(case)["accessKeys"]

    def registry(self, case: NodeCase) -> dict[str, Any]:
        from atc_xaccount import registry

        entry = registry.get(self.emulator.client("dynamodb"), self.emulator.registry_table or "", case.cluster)
        return entry or {}

    def external_id(self, case: NodeCase) -> str:
        from atc_xaccount.external_ids import read_external_id, secret_name

        found = read_external_id(
            self.emulator.client("secretsmanager"), secret_name(self.emulator.secret_prefix, case.cluster)
        )
        assert found is not None
        return found[1]

    def history(self, result: ExecutionResult) -> str:
        sfn = self.emulator.client("stepfunctions")
        events = sfn.get_execution_history(executionArn=result.arn, maxResults=1000)["events"]
        return json.dumps(events, default=str)
