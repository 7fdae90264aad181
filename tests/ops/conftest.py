"""moto fixtures for the AWS operations: several accounts, reached through STS credentials."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3

from atc_xaccount.model import Defaults, parse_event
from atc_xaccount.sessions import AccountSessions
from atc_xaccount.steps.context import StepContext

REGION = "us-east-1"
#: moto's default account: where plain credentials land (the automation account).
AUTOMATION = "123456789012"
CM, S3 = "111111111111", "222222222222"
AUTOMATION_ROLE = "atc-xaccount-automation"
SECRET_PREFIX = "atc-xaccount"
REGISTRY_TABLE = "atc-xaccount-registry"

NODE_ARN = f"arn:aws:iam::{CM}:role/atc-node"
ACCESS_ARN = f"arn:aws:iam::{S3}:role/atc-s3-access-keys"
ASSUME_POLICY_ARN = f"arn:aws:iam::{CM}:policy/atc-s3-assume-role"
ACCESS_POLICY_ARN = f"arn:aws:iam::{S3}:policy/atc-s3-policy"

EC2_TRUST: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
    ],
}

ACCESS_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Bucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            "Resource": "arn:aws:s3:::atc-demo-transfers",
        },
        {
            "Sid": "Objects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": "arn:aws:s3:::atc-demo-transfers/*",
        },
    ],
}

#: Operations that only read (or exchange credentials); everything else changes state.
READ_PREFIXES = ("Get", "List", "Describe", "Validate")
READ_OPERATIONS = frozenset({"AssumeRole"})


class Calls:
    """The operations (and their parameters) sent by every client a hook was registered on."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.sent.append((model.name, copy.deepcopy(params)))

    @property
    def operations(self) -> list[str]:
        return [name for name, _ in self.sent]

    @property
    def writes(self) -> list[str]:
        return [op for op in self.operations if op not in READ_OPERATIONS and not op.startswith(READ_PREFIXES)]

    def params_of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.sent if name == operation]


def watch(target: Any) -> Calls:
    """Record the calls of a client, or of every client a boto3 session creates from now on."""
    calls = Calls()
    events = target.events if isinstance(target, boto3.Session) else target.meta.events
    events.register("before-parameter-build", calls)
    return calls


def account_session(account: str) -> boto3.Session:
    """Credentials that land calls in `account` (moto routes by the credentials' account)."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/x", RoleSessionName="tests"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def iam_in(account: str) -> Any:
    return account_session(account).client("iam")


def create_role(iam: Any, name: str, trust: dict[str, Any] | None = None) -> None:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or EC2_TRUST))


def create_automation_role(account: str) -> None:
    """What the bootstrap StackSet puts in every target account: the role and its policy."""
    from pathlib import Path

    from atc_xaccount_cli.local.authz import load_bootstrap_role

    role = load_bootstrap_role(
        Path(__file__).resolve().parents[2], {"AutomationAccountId": AUTOMATION}, account=account
    )
    iam = iam_in(account)
    create_role(
        iam,
        AUTOMATION_ROLE,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{AUTOMATION}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
    )
    for name, document in role.policies.items():
        iam.put_role_policy(RoleName=AUTOMATION_ROLE, PolicyName=name, PolicyDocument=json.dumps(document))


def seed_documented_prerequisites(
    *, node_role: bool = True, access_role: bool = True, access_policy_attached: bool = True
) -> None:
    """The state the manual procedure assumes: atc-node, and atc-s3-access-keys with atc-s3-policy.

    Plus the automation account's cluster registry, which preflight reads when nothing is to change.
    """
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=REGISTRY_TABLE,
        KeySchema=[{"AttributeName": "clusterId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "clusterId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for account in {CM, S3}:
        create_automation_role(account)
    cm_iam, s3_iam = iam_in(CM), iam_in(S3)
    if node_role:
        create_role(cm_iam, "atc-node")
    s3_iam.create_policy(PolicyName="atc-s3-policy", PolicyDocument=json.dumps(ACCESS_POLICY))
    if access_role:
        create_role(s3_iam, "atc-s3-access-keys")
        if access_policy_attached:
            s3_iam.attach_role_policy(RoleName="atc-s3-access-keys", PolicyArn=ACCESS_POLICY_ARN)


def request_for(**detail: Any) -> Any:
    """A validated request for the demo cluster; keyword arguments override detail fields."""
    base = {
        "clusterId": "demo-cluster-1",
        "clusterManagerAccountId": CM,
        "s3AccountId": S3,
        "buckets": ["atc-demo-transfers"],
    }
    return parse_event({**base, **detail}, Defaults())


def step_context(base: boto3.Session, *, dry_run: bool = False) -> StepContext:
    sessions = AccountSessions(
        automation_role_name=AUTOMATION_ROLE,
        partition="aws",
        region=REGION,
        execution="ops-test",
        base_session=base,
    )
    return StepContext(
        sessions=sessions,
        secret_prefix=SECRET_PREFIX,
        defaults=Defaults(),
        registry_table=REGISTRY_TABLE,
        dry_run=dry_run,
    )
