"""The embedded engine: the real state machine, on moto, with the real handlers.

`Emulator` starts moto with Step Functions execution on, seeds a world, creates the
functions and the state machine from `template.yaml` (DefinitionSubstitutions resolved
as SAM would), runs executions and follows them. DESIGN.md section 5.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.config import default_user_config

from atc_xaccount_cli.executions import ExecutionResult, follow_execution
from atc_xaccount_cli.local import (
    authz,
    aws_time,
    choice_paths,
    iam_quotas,
    identities,
    moto_gaps,
    step_roles,
    trust_judge,
)
from atc_xaccount_cli.local import world as worlds
from atc_xaccount_cli.local.dispatch import CallLedger, Dispatcher, code_zip
from atc_xaccount_cli.local.limits import HISTORY_EVENTS, PAYLOAD_BYTES, Limits
from atc_xaccount_cli.local.nodeapi import EmulatedNodeApis
from atc_xaccount_cli.local.pattern import admit, bus_statements, matches
from atc_xaccount_cli.local.template import Resolver, SamApp, TemplateError, load_yaml, substitute_definition

AUTOMATION_ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
#: The stack name the emulator deploys as (the bootstrap template's AutomationStackName default).
STACK_NAME = "atc-xaccount"
STEP_ROLE = "atc-xaccount-local-step"
STATES_ROLE = "atc-xaccount-local-states"
EVENTS_QUEUE = "atc-xaccount-local-published"
OUTPUT_SOURCE = "atc.xaccount"
REGISTRY_TABLE = "ClusterRegistryTable"

#: Template parameters the emulator sets unless told otherwise: IAM here is consistent at
#: once, so local runs do not wait for propagation.
LOCAL_PARAMETERS = {
    "PropagationWaitSeconds": "0",
    # The sample events come from the sample cluster manager account (events/*.json),
    # forwarded to the automation account's bus as bootstrap/event-forwarder.yaml does.
    "EventSourceAccounts": "111111111111",
    # The sample pair (events/sample-world.json): the sample cluster manager account may be
    # connected to the sample S3 account. `--param AllowedAccountPairs=...` overrides it.
    "AllowedAccountPairs": "111111111111:222222222222",
}

#: What the emulated Lambda environment sets besides the template's variables.
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # moto has no IAM Access Analyzer: the steps say the AWS check was unavailable.
    "ACCESS_ANALYZER": "unavailable",
    # In-Lambda retries of transient IAM answers (aws_errors.retried) do not sleep here.
    "ATC_RETRY_BASE_SECONDS": "0",
}


class Emulator:
    """One emulated AWS (several accounts) with the application deployed into it."""

    def __init__(
        self,
        root: Path,
        *,
        parameters: dict[str, str] | None = None,
        verbose: bool = False,
        endpoint_url: str | None = None,
        enforce_automation_role: bool | None = None,
        payload_limit: int = PAYLOAD_BYTES,
        history_limit: int = HISTORY_EVENTS,
        aws_timing: aws_time.AwsTiming | None = None,
        secret_deletion_lag: int = aws_time.DELETION_LAG_CALLS,
    ) -> None:
        self.root = root
        #: AWS's timing: step calls take AWS's seconds and the propagation wait is the
        #: template's default (unless `parameters` sets one). None: as fast as moto.
        self.aws_timing = aws_timing
        #: Calls for which a force-deleted secret is still being deleted (0: gone at once).
        self.secret_deletion_lag = secret_deletion_lag
        #: Step Functions' payload and history quotas (AWS's unless a test lowers them).
        self.limits = Limits(payload_bytes=payload_limit, history_events=history_limit)
        local = {k: v for k, v in LOCAL_PARAMETERS.items() if not (aws_timing and k == "PropagationWaitSeconds")}
        self.app = SamApp.load(root, {**local, **(parameters or {})})
        # The bootstrap role of every account; None: enforced as `authz.enforcing()` says.
        self.authz = authz.AutomationRoleAuthz.for_emulator(
            root, self.app.parameters, AUTOMATION_ACCOUNT, PARTITION, enforce_automation_role
        )
        self.ledger = CallLedger()
        self.dispatcher = Dispatcher(self.app.functions, self.ledger)
        #: The clusters' Node APIs the world declares (`nodeApis`), answering the steps' client.
        self.node_apis = EmulatedNodeApis(self.dispatcher, REGION, PARTITION)
        self.verbose = verbose
        #: A moto server (`ThreadedMotoServer` in this process) to deploy into over HTTP,
        #: instead of in-process mocking: what the operator CLI's tests talk to.
        self.endpoint_url = endpoint_url
        self.state_machine_arns: dict[str, str] = {}
        self._stack = ExitStack()
        self._queue_url = ""
        self._saved_env: dict[str, str | None] = {}
        self._clients: dict[str, Any] = {}
        self._accounts: dict[str, boto3.Session] = {}
        self.tables: dict[str, str] = {}
        self.buckets: dict[str, str] = {}
        #: The template's own secrets (name -> ARN): the fingerprint key, kept in the world.
        self.deployment_secrets: dict[str, str] = {}
        #: Each step's role as `sam deploy` creates it, judging the step's own calls.
        self.step_roles: step_roles.StepRoles | None = None
        #: Every AssumeRole against the target role's trust policy (steps, operators, the proof).
        self.assume_judge: trust_judge.AssumeRoleJudge | None = None

    def client(self, service: str) -> Any:
        """A client in the automation account (created once: client creation is slow)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=REGION)
        return self._clients[service]

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Emulator:
        self._set_environment(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
            }
        )
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        if self.endpoint_url:
            port = self.endpoint_url.rsplit(":", 1)[-1].strip("/")
            self._set_environment({"AWS_ENDPOINT_URL": self.endpoint_url, "MOTO_PORT": port})
            self._stack.enter_context(patch.dict(default_user_config, config))
        else:
            # A shell that exported `local serve`'s endpoint must not send this emulator's calls there.
            self._saved_env.setdefault("AWS_ENDPOINT_URL", os.environ.pop("AWS_ENDPOINT_URL", None))
            self._stack.enter_context(mock_aws(config=config))
        self._stack.enter_context(self.dispatcher.installed())
        self._stack.enter_context(aws_time.secret_deletion_lag(self.secret_deletion_lag))
        self.dispatcher.timing = self.aws_timing
        self._stack.enter_context(moto_gaps.bridged())
        self._stack.enter_context(iam_quotas.enforced())
        self._stack.enter_context(choice_paths.enforced())
        self._stack.enter_context(self.limits.installed())
        self._stack.enter_context(self.authz.installed())
        self._stack.enter_context(self.node_apis.installed())
        self._stack.enter_context(warnings.catch_warnings())
        # Metrics are disabled in the emulator, so Powertools' "no metrics" warning is noise.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        if not self.verbose:
            logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._deploy()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _set_environment(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    @property
    def automation_role_name(self) -> str:
        return self.app.parameters.get("AutomationRoleName", "atc-xaccount-automation")

    @property
    def secret_prefix(self) -> str:
        return str(self.app.environment.get("EXTERNAL_ID_SECRET_PREFIX", "atc-xaccount"))

    # --- deployment (what `sam deploy` would create) -----------------------------------

    def _deploy(self) -> None:
        iam = self.client("iam")
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
        step_role = iam.create_role(RoleName=STEP_ROLE, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        states_role = iam.create_role(RoleName=STATES_ROLE, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        self.ensure_account(AUTOMATION_ACCOUNT)

        attributes: dict[tuple[str, str], str] = {}
        refs: dict[str, str] = {}
        resolver = Resolver(
            parameters=self.app.parameters,
            pseudo={
                "AWS::Region": REGION,
                "AWS::AccountId": AUTOMATION_ACCOUNT,
                "AWS::Partition": PARTITION,
                "AWS::StackName": STACK_NAME,
            },
            attributes=attributes,
            refs=refs,
            lists=self.app.list_parameters,
            conditions=self.app.conditions,
        )
        for logical_id, props in self.app.tables.items():
            refs[logical_id] = self._create_table(logical_id, resolver.resolve(props))
        for logical_id, props in self.app.secrets.items():
            name, refs[logical_id] = identities.create_template_secret(
                self.client("secretsmanager"), resolver.resolve(props)
            )
            self.deployment_secrets[name] = refs[logical_id]
        for logical_id in self.app.buckets:
            refs[logical_id] = f"{logical_id.lower()}-{AUTOMATION_ACCOUNT}-local"
            self.client("s3").create_bucket(Bucket=refs[logical_id])
            self.buckets[logical_id] = refs[logical_id]
        lam = self.client("lambda")
        for logical_id, spec in self.app.functions.items():
            created = lam.create_function(
                FunctionName=logical_id,
                Runtime="python3.13",
                Role=step_role,
                Handler=spec.handler,
                Code={"ZipFile": code_zip(spec.code_dir)},
                Architectures=["arm64"],
            )
            attributes[(logical_id, "Arn")] = created["FunctionArn"]
            refs[logical_id] = logical_id
        environment = {k: str(resolver.resolve(v)) for k, v in self.app.environment.items()}
        environment.update(LAMBDA_ENVIRONMENT)
        if not self.verbose:
            environment["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        self._set_environment(environment)
        self.tables = {logical_id: refs[logical_id] for logical_id in self.app.tables}
        self._create_state_machines(resolver, states_role, attributes, refs)
        self._capture_published_events()
        self._enforce_step_roles(resolver)

    def _enforce_step_roles(self, resolver: Resolver) -> None:
        """Judge each step's own calls against its role from the translated template."""
        where = step_roles.Place(PARTITION, REGION, AUTOMATION_ACCOUNT)
        attributes = dict(resolver.attributes)
        for logical_id, name in self.tables.items():
            attributes[(logical_id, "Arn")] = f"arn:{PARTITION}:dynamodb:{REGION}:{AUTOMATION_ACCOUNT}:table/{name}"
        for logical_id, name in self.buckets.items():
            attributes[(logical_id, "Arn")] = f"arn:{PARTITION}:s3:::{name}"
        judged = replace(resolver, pseudo={**resolver.pseudo}, attributes=attributes, refs=dict(resolver.refs))
        self.step_roles = step_roles.StepRoles.from_template(
            self.root, self.app.parameters, judged, where, os.environ["AWS_ACCESS_KEY_ID"], enabled=self.authz.enabled
        )
        self.dispatcher.authorize = self.step_roles.judge
        # moto admits every AssumeRole: each is judged by the target role's trust policy.
        self.assume_judge = trust_judge.AssumeRoleJudge(
            PARTITION,
            AUTOMATION_ACCOUNT,
            STACK_NAME,
            os.environ["AWS_ACCESS_KEY_ID"],
            exempt_roles=frozenset({authz.ADMIN_ROLE}),
            enabled=self.authz.enabled,
        )
        self.dispatcher.judge_assume = self.assume_judge.judge

    def _create_table(self, logical_id: str, props: dict[str, Any]) -> str:
        """The table as CloudFormation would create it (named after its logical id here)."""
        dynamodb = self.client("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:  # DynamoDB deletes expired items on its own schedule (days); moto keeps them, as reads may
            dynamodb.update_time_to_live(TableName=logical_id, TimeToLiveSpecification=ttl)
        return logical_id

    def _create_state_machines(
        self, resolver: Resolver, role: str, attributes: dict[tuple[str, str], str], refs: dict[str, str]
    ) -> None:
        """Create every state machine, those referenced by others' substitutions first."""
        sfn = self.client("stepfunctions")
        pending = dict(self.app.state_machines)
        while pending:
            progressed = False
            for logical_id, machine in list(pending.items()):
                try:
                    substitutions = {k: str(resolver.resolve(v)) for k, v in machine.substitutions.items()}
                except TemplateError:
                    continue
                text = machine.definition_path.read_text(encoding="utf-8")
                arn = sfn.create_state_machine(
                    name=logical_id,
                    definition=substitute_definition(text, substitutions),
                    roleArn=role,
                    type="STANDARD",
                )["stateMachineArn"]
                self.state_machine_arns[logical_id] = arn
                refs[logical_id] = arn
                attributes[(logical_id, "Name")] = logical_id
                attributes[(logical_id, "Arn")] = arn
                del pending[logical_id]
                progressed = True
            if not progressed:
                raise TemplateError(f"cannot resolve the substitutions of {', '.join(pending)}")

    def _capture_published_events(self) -> None:
        """A rule on the bus that copies our output events to a queue we can read."""
        sqs = self.client("sqs")
        self._queue_url = sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = self.client("events")
        bus = self.app.parameters.get("EventBusName", "default")
        if bus != "default":
            events.create_event_bus(Name=bus)
        events.put_rule(
            Name="atc-xaccount-local-published", EventBusName=bus, EventPattern=json.dumps({"source": [OUTPUT_SOURCE]})
        )
        events.put_targets(
            Rule="atc-xaccount-local-published", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )

    # --- worlds ------------------------------------------------------------------------

    def ensure_account(self, account: str) -> boto3.Session:
        """An account with the bootstrap automation role in it (what the StackSet creates).

        The role is made from bootstrap/automation-role.yaml. The session returned is the
        emulator's administrator in the account (seeding, snapshots), not that role.
        """
        if account in self._accounts:
            return self._accounts[account]
        session = worlds.account_session(account, REGION, authz.ADMIN_ROLE)
        self.authz.ensure_role(session.client("iam"), account)
        self._accounts[account] = session
        return session

    def deploy_bootstrap(self, account: str, parameters: dict[str, str]) -> None:
        """(Re)deploy `account`'s bootstrap stack instance with these parameter overrides."""
        iam = self.ensure_account(account).client("iam")
        try:
            self.authz.ensure_role(iam, account, parameters)
        except authz.BootstrapError as exc:
            self.authz.stack_instances.pop(account, None)
            raise worlds.WorldError(f"accounts.{account}.bootstrap: {exc}") from exc

    @property
    def registry_table(self) -> str | None:
        return self.tables.get(REGISTRY_TABLE)

    def seed(self, world: dict[str, Any]) -> None:
        worlds.validate_world(world)
        # What Organizations answers of each account: aws:PrincipalOrgID, aws:ResourceOrgID.
        organizations = {a: s["organizationId"] for a, s in world["accounts"].items() if "organizationId" in s}
        if self.assume_judge is not None:
            self.assume_judge.organizations.update(organizations)
        if self.step_roles is not None:
            self.step_roles.organizations.update(organizations)
        self.node_apis.seed(world.get("nodeApis") or {})
        for account, state in world["accounts"].items():
            if account == AUTOMATION_ACCOUNT and set(state.get("secrets") or {}) & set(self.deployment_secrets):
                state = identities.seed_template_secrets(self.client("secretsmanager"), self.deployment_secrets, state)
            if "bootstrap" in state:
                self.deploy_bootstrap(account, state["bootstrap"])
            try:
                worlds.seed_account(self.ensure_account(account), account, state, PARTITION)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise worlds.WorldError(
                    f"accounts.{account}: AWS refused to create it: {error.get('Code')}: {error.get('Message')}"
                ) from exc
            if state.get("registry") and self.registry_table:
                if account != AUTOMATION_ACCOUNT:
                    raise worlds.WorldError(
                        f"accounts.{account}.registry: the registry lives in the automation account "
                        f"{AUTOMATION_ACCOUNT}"
                    )
                worlds.seed_registry(self.client("dynamodb"), self.registry_table, state["registry"])

    def operator_session(self, world: dict[str, Any] | None = None) -> boto3.Session:
        """The operator's own credentials: the world's `operator`, or the emulator's default one."""
        arn = ((world or {}).get("operator") or {}).get("principalArn") or (
            f"arn:{PARTITION}:iam::{AUTOMATION_ACCOUNT}:role/{authz.OPERATOR_ROLE_NAME}"
        )
        return identities.operator_session(
            arn, lambda account: self.ensure_account(account).client("iam"), REGION, PARTITION
        )

    @property
    def operator_role_name(self) -> str:
        """The operators' read-only role in every target account (bootstrap OperatorRoleName)."""
        return self.app.parameters.get("OperatorRoleName", "atc-xaccount-read")

    def snapshot(self, accounts: list[str]) -> dict[str, Any]:
        skip = {self.automation_role_name, self.operator_role_name, STEP_ROLE, STATES_ROLE, authz.OPERATOR_ROLE_NAME}
        result: dict[str, Any] = {}
        for account in sorted(set(accounts)):
            state = worlds.snapshot_account(
                self.ensure_account(account), skip_roles=skip, secret_prefix=self.secret_prefix
            )
            bootstrap = self.authz.stack_instances.get(account)
            if bootstrap:
                state["bootstrap"] = dict(sorted(bootstrap.items()))
            # The deployment's own buckets (bulk uploads) are not part of the world.
            state["buckets"] = [b for b in state["buckets"] if b not in self.buckets.values()]
            if account == AUTOMATION_ACCOUNT:
                kept = identities.template_secret_values(self.client("secretsmanager"), self.deployment_secrets)
                state["secrets"] = dict(sorted({**(state.get("secrets") or {}), **kept}.items()))
                if not (state["roles"] or state["policies"] or state["buckets"]):
                    state = {"secrets": state["secrets"]} if state.get("secrets") else {}
                registry = (
                    worlds.snapshot_registry(self.client("dynamodb"), self.registry_table)
                    if (self.registry_table)
                    else {}
                )
                if registry:
                    state["registry"] = registry
                prefix = self.app.parameters.get("NodeApiSecretPrefix", "")
                node_users = self.node_apis.node_user_secrets(self.ensure_account(account), prefix) if prefix else {}
                if node_users:
                    state["secrets"] = dict(sorted({**state.get("secrets", {}), **node_users}.items()))
            if state:
                result[account] = state
        node_apis = self.node_apis.snapshot()
        return {"accounts": result, **({"nodeApis": node_apis} if node_apis else {})}

    # --- executions --------------------------------------------------------------------

    def rule_patterns(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every EventBridge rule of the template: (state machine, rule) -> pattern."""
        resolver = Resolver(self.app.parameters, {}, {}, {})
        return {
            (machine, name): resolver.resolve(pattern)
            for machine, spec in self.app.state_machines.items()
            for name, pattern in spec.patterns.items()
        }

    def route(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """(state machine, rule) the template's rules deliver `event` to; None for a bare detail.

        Raises LookupError when no rule would deliver a whole EventBridge event.
        """
        if "detail" not in event:
            return None
        for (machine, rule), pattern in self.rule_patterns().items():
            if matches(pattern, event):
                self.admit(event)
                return machine, rule
        raise LookupError(
            "no rule in template.yaml would deliver this event (patterns "
            + json.dumps([p for p in self.rule_patterns().values()])
            + "); check `source` and `detail-type`"
        )

    def admit(self, event: dict[str, Any]) -> None:
        """Raise EventRefused (a LookupError) unless the bus policy lets the event's account put it."""
        template = load_yaml(self.root / "template.yaml")
        parameters: dict[str, Any] = dict(self.app.parameters)
        for name, spec in (template.get("Parameters") or {}).items():
            if spec.get("Type") == "CommaDelimitedList":
                parameters[name] = [v.strip() for v in str(parameters.get(name, "")).split(",")]
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": AUTOMATION_ACCOUNT, "AWS::Partition": PARTITION}
        resolver = Resolver(parameters, pseudo, {}, {})
        bus = self.app.parameters.get("EventBusName", "default")
        admit(bus_statements(template, resolver, bus), event, AUTOMATION_ACCOUNT, PARTITION)

    def start(self, event: dict[str, Any], machine: str = "OnboardStateMachine", name: str | None = None) -> str:
        sfn = self.client("stepfunctions")
        return sfn.start_execution(
            stateMachineArn=self.state_machine_arns[machine],
            name=name or f"local-{uuid.uuid4().hex[:12]}",
            input=json.dumps(event),
        )["executionArn"]

    def follow(self, arn: str, on_state: Any = None, timeout: float = 600, on_progress: Any = None) -> ExecutionResult:
        """Poll the execution; call `on_state(StateRun)` as each state completes, `on_progress` while one waits."""
        sfn = self.client("stepfunctions")
        return follow_execution(sfn, arn, on_state=on_state, on_progress=on_progress, timeout=timeout, poll=0.02)

    def published_events(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    @contextmanager
    def counting(self) -> Iterator[CallLedger]:
        self.ledger.reset()
        yield self.ledger
