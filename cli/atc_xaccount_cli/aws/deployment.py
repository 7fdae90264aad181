"""Find a deployed atc-xaccount: its state machines, tables and settings.

From the CloudFormation stack's outputs: `--stack`, else `ATC_XACCOUNT_STACK`, else
samconfig.toml's `stack_name` (what `sam deploy` used). When the stack came from a default
and does not exist, the resources are found by the logical names SAM puts at the start of
physical names (a deployment without a stack, e.g. a bare moto server); an explicit
`--stack` that does not exist is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from atc_xaccount.arns import partition_for_region
from atc_xaccount.model import Defaults
from atc_xaccount.sessions import AccountSessions
from atc_xaccount.steps.context import StepContext
from atc_xaccount_cli.errors import ConfigError
from atc_xaccount_cli.paths import samconfig_value

MACHINES = {
    "onboard": "OnboardStateMachine",
    "offboard": "OffboardStateMachine",
    "audit": "AuditStateMachine",
    "bulk": "BulkStateMachine",
    "rotate": "RotateStateMachine",
}
TABLES = {"registry": "ClusterRegistryTable", "locks": "LocksTable"}
STACK_ENV = "ATC_XACCOUNT_STACK"
DEFAULT_AUTOMATION_ROLE = "atc-xaccount-automation"


def default_stack() -> str | None:
    """The stack name when --stack is not given: the environment, then samconfig.toml."""
    return os.environ.get(STACK_ENV) or samconfig_value("stack_name")


class DeploymentNotFound(ConfigError):
    """The stack, or one of its resources, cannot be found with these credentials."""


@dataclass(frozen=True)
class Deployment:
    region: str
    state_machines: dict[str, str]
    tables: dict[str, str]
    event_bus: str = "default"
    automation_role_name: str = DEFAULT_AUTOMATION_ROLE
    secret_prefix: str = "atc-xaccount"  # noqa: S105 - a name prefix, not a secret
    bulk_bucket: str | None = None
    #: The read-only role operators assume in target accounts (bootstrap OperatorRoleName).
    operator_role_name: str = "atc-xaccount-read"
    #: The fingerprint key's secret (stack output FingerprintKeySecretArn): plan compares with the registry.
    fingerprint_key_secret: str = ""
    stack: str | None = None

    def machine(self, kind: str) -> str:
        if kind not in self.state_machines:
            raise DeploymentNotFound(f"no {MACHINES[kind]} found in {self.region}: is the deployment up to date?")
        return self.state_machines[kind]

    def machine_kind(self, arn: str) -> str:
        """The logical name of the state machine an execution or state machine ARN belongs to."""
        machine = arn.split(":")[6] if arn.count(":") >= 6 else ""
        for kind, logical in MACHINES.items():
            if self.state_machines.get(kind, "").split(":")[-1] == machine or machine.startswith(logical):
                return logical
        return ""

    def step_context(self, session: boto3.Session, execution: str, *, dry_run: bool = False) -> StepContext:
        """The steps' context with the operator's credentials (same code as the Lambdas), reading
        target accounts through the operators' read-only role: operators read, workflows write."""
        sessions = AccountSessions(
            automation_role_name=self.operator_role_name,
            writer_role_name=self.automation_role_name,
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
    """The deployment: by `stack` if given (strictly), else by the default stack, else by names."""
    region = session.region_name
    if stack:
        return _from_stack(session, stack, region, automation_role_name)
    default = default_stack()
    if default:
        try:
            return _from_stack(session, default, region, automation_role_name)
        except DeploymentNotFound:
            pass
    return _by_names(session, region, automation_role_name, default)


def _by_names(session: boto3.Session, region: str, automation_role_name: str | None, default: str | None) -> Deployment:
    machines: dict[str, str] = {}
    for page in session.client("stepfunctions").get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            for kind, logical in MACHINES.items():
                if machine["name"].startswith(logical):
                    machines.setdefault(kind, machine["stateMachineArn"])
    if not machines:
        tried = f"no stack {default} (samconfig.toml's stack_name, or {STACK_ENV}) and " if default else ""
        raise DeploymentNotFound(
            f"{tried}no atc-xaccount state machines in {region}: pass --stack NAME, or check --region / --profile"
        )
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
    return Deployment(
        region,
        machines,
        tables,
        automation_role_name=automation_role_name or DEFAULT_AUTOMATION_ROLE,
        bulk_bucket=bulk,
        fingerprint_key_secret=key,
    )


def _from_stack(session: boto3.Session, stack: str, region: str, automation_role_name: str | None) -> Deployment:
    client: Any = session.client("cloudformation")
    try:
        described = client.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ValidationError":
            raise
        raise DeploymentNotFound(
            f"stack {stack} not found in {region}: pass --stack NAME, or check --region / --profile"
        ) from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    machines = {kind: outputs[f"{logical}Arn"] for kind, logical in MACHINES.items() if f"{logical}Arn" in outputs}
    tables = {kind: outputs[f"{logical}Name"] for kind, logical in TABLES.items() if f"{logical}Name" in outputs}
    return Deployment(
        region,
        machines,
        tables,
        event_bus=parameters.get("EventBusName", "default"),
        automation_role_name=automation_role_name or parameters.get("AutomationRoleName", DEFAULT_AUTOMATION_ROLE),
        bulk_bucket=outputs.get("BulkBucketName"),
        operator_role_name=parameters.get("OperatorRoleName", "atc-xaccount-read"),
        fingerprint_key_secret=outputs.get("FingerprintKeySecretArn", ""),
        stack=stack,
    )
