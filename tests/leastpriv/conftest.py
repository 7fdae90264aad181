"""Least-privilege tests: the workflow holding only the bootstrap role's permissions.

`Lab` is one enforcing emulator shared by a module: every case gets fresh target
accounts and its own cluster id, so cases never see each other's state, and the
emulator's start-up is paid once.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from atc_xaccount_cli.local import authz
from atc_xaccount_cli.local.engine import REGION, Emulator, ExecutionResult

ROOT = Path(__file__).resolve().parents[2]
CM, S3 = "111111111111", "222222222222"
ONBOARD, OFFBOARD = "OnboardStateMachine", "OffboardStateMachine"
ASSUME_POLICY, ACCESS_POLICY = "atc-s3-assume-role", "atc-s3-policy"
NODE_ROLE, ACCESS_ROLE = "atc-node", "atc-s3-access-keys"
AUTOMATION_ROLE = "atc-xaccount-automation"
BUCKET = "atc-demo-transfers"


def load(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


def bootstrap_role(account: str = CM) -> authz.BootstrapRole:
    return authz.load_bootstrap_role(ROOT, {"AutomationAccountId": "123456789012"}, account=account)


def automation_session(account: str, name: str = "atc-xaccount-manual") -> boto3.Session:
    """Credentials of the automation role in `account`, as a step gets them."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{AUTOMATION_ROLE}", RoleSessionName=name
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


@dataclass
class Case:
    """One cluster in its own pair of accounts."""

    cluster: str
    cm: str
    s3: str

    def world(self, base: dict[str, Any]) -> dict[str, Any]:
        """`base` (written for CM and S3) moved to this case's accounts, merged when they are one."""
        accounts: dict[str, Any] = {}
        for account, state in base["accounts"].items():
            text = json.dumps(state).replace(CM, self.cm).replace(S3, self.s3)
            moved = json.loads(
                text.replace(f'"{BUCKET}', f'"{self.bucket}').replace(f":::{BUCKET}", f":::{self.bucket}")
            )
            target = {CM: self.cm, S3: self.s3}.get(account, account)
            merged = accounts.setdefault(target, {})
            for key, value in moved.items():
                if isinstance(value, dict):
                    merged.setdefault(key, {}).update(value)
                elif isinstance(value, list):
                    merged[key] = merged.get(key, []) + value
        return {"accounts": accounts}

    def event(self, base: dict[str, Any], **detail: Any) -> dict[str, Any]:
        event = copy.deepcopy(base)
        ids = {"clusterId": self.cluster, "clusterManagerAccountId": self.cm, "s3AccountId": self.s3}
        event["detail"].update(ids)
        event["account"] = self.cm  # EventBridge sets it to the sender: the cluster manager account
        if "buckets" in event["detail"]:
            event["detail"]["buckets"] = [self.bucket]
        event["detail"].update(detail)
        return event

    @property
    def bucket(self) -> str:
        """Bucket names are global: each case has its own copy of the sample bucket."""
        return f"atc-{self.cluster}-transfers"

    @property
    def assume_policy_arn(self) -> str:
        return f"arn:aws:iam::{self.cm}:policy/{ASSUME_POLICY}"


#: Every case's cluster manager account (Lab.case) may be connected to its S3 account.
LAB_PAIRS = ",".join(f"{100000000000 + n}:*" for n in range(1, 200))


class Lab:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._cases = 0

    def case(self, *, same_account: bool = False) -> Case:
        self._cases += 1
        cm = f"{100000000000 + self._cases}"
        s3 = cm if same_account else f"{200000000000 + self._cases}"
        return Case(f"lp-{self._cases}", cm, s3)

    def seed(self, case: Case, base: dict[str, Any]) -> dict[str, Any]:
        world = case.world(base)
        self.emulator.seed(world)
        return world

    def run(self, event: dict[str, Any], machine: str = ONBOARD) -> ExecutionResult:
        return self.emulator.follow(self.emulator.start(event, machine))

    def restrict(self, case: Case, mutation: authz.Mutation) -> None:
        """Re-apply the bootstrap role of both accounts with `mutation` applied."""
        for account in {case.cm, case.s3}:
            role = mutation(self.emulator.authz.role_for(account))
            self.emulator.authz.apply(self.emulator.ensure_account(account).client("iam"), role)

    def iam(self, account: str) -> Any:
        """The emulator's administrator in `account` (not judged)."""
        return self.emulator.ensure_account(account).client("iam")

    def compensation(self, result: ExecutionResult) -> dict[str, Any]:
        """What the Compensate state returned (it is not part of the execution's output)."""
        sfn = self.emulator.client("stepfunctions")
        events = sfn.get_execution_history(executionArn=result.arn, maxResults=1000)["events"]
        for event in events:
            details = event.get("stateExitedEventDetails") or {}
            if details.get("name") == "Compensate":
                return json.loads(details["output"])["compensation"]
        raise AssertionError(f"execution {result.name} never left a Compensate state")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Emulator(ROOT, parameters={"AllowedAccountPairs": LAB_PAIRS}, enforce_automation_role=True) as emulator:
        yield Lab(emulator)


@pytest.fixture
def sample_world() -> dict[str, Any]:
    return load("sample-world.json")


@pytest.fixture
def registered() -> dict[str, Any]:
    return load("cluster-registered.json")


@pytest.fixture
def deregistered() -> dict[str, Any]:
    return load("cluster-deregistered.json")


def with_assume_policy(world: dict[str, Any], versions: int) -> dict[str, Any]:
    """The sample world where the assume policy already exists (a foreign statement in it), attached."""
    world = copy.deepcopy(world)
    foreign = {"Sid": "OpsReadOnly", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    world["accounts"][CM]["policies"][ASSUME_POLICY] = {
        "document": {"Version": "2012-10-17", "Statement": [foreign]},
        "versions": versions,
    }
    world["accounts"][CM]["roles"][NODE_ROLE]["attached"] = [f"arn:aws:iam::{CM}:policy/{ASSUME_POLICY}"]
    return world
