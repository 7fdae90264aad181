"""template.yaml as CloudFormation would resolve it, for the deployment checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from atc_xaccount_cli.local.template import Resolver, load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"
STACK = "atc-xaccount"
#: (partition, region) pairs every resolved document is checked in.
PARTITIONS = [("aws", "us-east-1"), ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")]


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in template["Resources"].items() if res.get("Type") == kind}


def deployed_resolver(template: dict[str, Any], partition: str = "aws", region: str = "us-east-1") -> Resolver:
    """Resolves Ref/GetAtt/Sub to what the deployed stack's resources would return."""
    arn = f"arn:{partition}:{{service}}:{region}:{ACCOUNT}:{{resource}}"
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    for lid, res in template["Resources"].items():
        kind = res.get("Type")
        if kind == "AWS::DynamoDB::Table":
            refs[lid] = lid
            attributes[(lid, "Arn")] = arn.format(service="dynamodb", resource=f"table/{lid}")
        elif kind == "AWS::IAM::ManagedPolicy":
            refs[lid] = f"arn:{partition}:iam::{ACCOUNT}:policy/{STACK}-{lid}"
        elif kind == "AWS::SNS::Topic":
            refs[lid] = arn.format(service="sns", resource=lid)
            attributes[(lid, "TopicName")] = lid
        elif kind == "AWS::Serverless::Function":
            refs[lid] = f"{STACK}-{lid}"
            attributes[(lid, "Arn")] = arn.format(service="lambda", resource=f"function:{STACK}-{lid}")
        elif kind == "AWS::Serverless::StateMachine":
            refs[lid] = arn.format(service="states", resource=f"stateMachine:{lid}")
            attributes[(lid, "Name")] = lid
        elif kind == "AWS::KMS::Key":
            refs[lid] = "1234abcd-12ab-34cd-56ef-1234567890ab"
            attributes[(lid, "Arn")] = arn.format(service="kms", resource=f"key/{refs[lid]}")
        elif kind == "AWS::SecretsManager::Secret":
            # A secret's ARN ends in six random characters after its name.
            named = res["Properties"]["Name"]
            name = str(named.get("Fn::Sub", named) if isinstance(named, dict) else named)
            name = name.replace("${AWS::StackName}", STACK)
            refs[lid] = arn.format(service="secretsmanager", resource=f"secret:{name}-AbCdEf")
        elif kind == "AWS::CloudWatch::Alarm":
            attributes[(lid, "Arn")] = arn.format(service="cloudwatch", resource=f"alarm:{lid}")
        elif kind == "AWS::Logs::LogGroup":
            attributes[(lid, "Arn")] = arn.format(service="logs", resource=f"log-group:{lid}:*")
        elif kind == "AWS::S3::Bucket":
            # A generated bucket name (<stack>-<logical id>-<suffix>, lower case); S3 ARNs
            # carry neither region nor account.
            refs[lid] = f"{STACK}-{lid.lower()}-1a2b3c4d5e6f"
            attributes[(lid, "Arn")] = f"arn:{partition}:s3:::{refs[lid]}"
        else:
            refs[lid] = lid
    # The dead-letter queues SAM generates for the EventBridge rules (QueueLogicalId).
    for queue in (
        "OnboardStateMachineClusterRegisteredDLQ",
        "OffboardStateMachineClusterDeregisteredDLQ",
        "RotateStateMachineRotateExternalIdDLQ",
    ):
        refs[queue] = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{queue}"
        attributes[(queue, "QueueName")] = queue
        attributes[(queue, "Arn")] = arn.format(service="sqs", resource=queue)
    parameters = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    pseudo = {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
    }
    lists = frozenset(n for n, spec in template["Parameters"].items() if spec.get("Type") == "CommaDelimitedList")
    return Resolver(
        parameters=parameters,
        pseudo=pseudo,
        attributes=attributes,
        refs=refs,
        lists=lists,
        conditions=template.get("Conditions") or {},
    )


@pytest.fixture(scope="session")
def template_doc() -> dict[str, Any]:
    return load_yaml(TEMPLATE)


@pytest.fixture
def template(template_doc: dict[str, Any]) -> dict[str, Any]:
    """A copy a test may change."""
    return copy.deepcopy(template_doc)
