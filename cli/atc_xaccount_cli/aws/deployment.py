"""Find a deployed atc-xaccount: its state machines, tables and settings.

From the CloudFormation stack's outputs when `--stack` is given, otherwise by the
logical names SAM puts at the start of physical names (which is also how resources
are named on a moto server).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3

from atc_xaccount.arns import partition_for_region
from atc_xaccount.model import Defaults
from atc_xaccount.sessions import AccountSessions
from atc_xaccount.steps.context import StepContext

MACHINES = {
    "onboard": "OnboardStateMachine",
    "offboard": "OffboardStateMachine",
    "audit": "AuditStateMachine",
    "bulk": "BulkStateMachine",
    "rotate": "RotateStateMachine",
}
TABLES = {"registry": "ClusterRegistryTable", "locks": "LocksTable"}


class DeploymentNotFound(LookupError):
    """The stack, or one of its resources, cannot be found with these credentials."""


@dataclass(frozen=True)
class Deployment:
    region: str
    state_machines: dict[str, str]
    tables: dict[str, str]
    event_bus: str = "default"
    automation_role_name: str = "atc-xaccount-automation"
    secret_prefix: str = "atc-xaccount"  # noqa: S105 - a name prefix, not a secret
    bulk_bucket: str | None = None
    #: The read-only role operators assume in target accounts (bootstrap OperatorRoleName).
    operator_role_name: str = "atc-xaccount-read"
    #: The fingerprint key's secret (stack output FingerprintKeySecretArn): plan compares with the registry.
    fingerprint_key_secret: str = ""

    def machine(self, kind: str) -> str:
        if kind not in self.state_machines:
            raise DeploymentNotFound(f"no {MACHINES[kind]} found in {self.region}")
        return self.state_machines[kind]

    def step_context(self, session: boto3.Session, execution: str, *, dry_run: bool = False) -> StepContext:
        """The steps' context with the operator's credentials (same code as the Lambdas), reading
        target accounts through the operators' read-only role: operators read, workflows write."""
        sessions = AccountSessions(
            automation_role_name=self.operator_role_name,
            partition=partition_for_region(self.region),
            region=self.region,
            execution=execution,
            base_session=session,
        )
        return StepContext(
            sessions=sessions,
            secret_prefix=self.secret_prefix,
            defaults=Defaults.from_env(os.environ),
            registry_table=self.tables.get("registry", ""),
            locks_table=self.tables.get("locks", ""),
            dry_run=dry_run,
            access_analyzer=os.environ.get("ACCESS_ANALYZER", "enabled") != "unavailable",
            fingerprint_key_secret=self.fingerprint_key_secret,
        )


def discover(session: boto3.Session, stack: str | None = None, automation_role_name: str | None = None) -> Deployment:
    region = session.region_name or "us-east-1"
    if stack:
        return _from_stack(session, stack, region, automation_role_name)
    machines: dict[str, str] = {}
    for page in session.client("stepfunctions").get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            for kind, logical in MACHINES.items():
                if machine["name"].startswith(logical):
                    machines.setdefault(kind, machine["stateMachineArn"])
    tables: dict[str, str] = {}
    for page in session.client("dynamodb").get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            for kind, logical in TABLES.items():
                if logical in name:
                    tables.setdefault(kind, name)
    bulk = next(
        (b["Name"] for b in session.client("s3").list_buckets().get("Buckets", []) if "bulkbucket" in b["Name"]),
        None,
    )
    key = next(
        (
            s["ARN"]
            for page in session.client("secretsmanager").get_paginator("list_secrets").paginate()
            for s in page["SecretList"]
            if s["Name"].endswith("-fingerprint-key")
        ),
        "",
    )
    if not machines:
        raise DeploymentNotFound(
            f"no atc-xaccount state machines in {region}; pass --stack or check --region/--profile"
        )
    return Deployment(
        region,
        machines,
        tables,
        automation_role_name=automation_role_name or "atc-xaccount-automation",
        bulk_bucket=bulk,
        fingerprint_key_secret=key,
    )


def _from_stack(session: boto3.Session, stack: str, region: str, automation_role_name: str | None) -> Deployment:
    client: Any = session.client("cloudformation")
    try:
        described = client.describe_stacks(StackName=stack)["Stacks"][0]
    except client.exceptions.ClientError as exc:
        raise DeploymentNotFound(f"stack {stack} not found in {region}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    machines = {kind: outputs[f"{logical}Arn"] for kind, logical in MACHINES.items() if f"{logical}Arn" in outputs}
    tables = {kind: outputs[f"{logical}Name"] for kind, logical in TABLES.items() if f"{logical}Name" in outputs}
    return Deployment(
        region,
        machines,
        tables,
        event_bus=parameters.get("EventBusName", "default"),
        automation_role_name=automation_role_name or parameters.get("AutomationRoleName", "atc-xaccount-automation"),
        bulk_bucket=outputs.get("BulkBucketName"),
        operator_role_name=parameters.get("OperatorRoleName", "atc-xaccount-read"),
        fingerprint_key_secret=outputs.get("FingerprintKeySecretArn", ""),
    )
