"""The emulated deployment's own secrets and its operator (who the operator commands run as).

The template creates a secret of its own, the fingerprint key: the emulator creates it as
CloudFormation would (a generated value) and keeps its value in the world, so a world
written by one run keeps its registry's fingerprints meaningful in the next. The operator
is the identity the operator commands (`local doctor`) run as: the world's
`operator.principalArn`, or the emulator's default operator role.
"""

from __future__ import annotations

import json
import secrets as random
import string
from collections.abc import Callable
from typing import Any

import boto3

from atc_xaccount_cli.local import world as worlds

_ALPHABET = string.ascii_letters + string.digits


def create_template_secret(client: Any, props: dict[str, Any]) -> tuple[str, str]:
    """(name, ARN) of the secret as CloudFormation creates it (GenerateSecretString: a random value)."""
    name = str(props["Name"])
    length = int((props.get("GenerateSecretString") or {}).get("PasswordLength", 32))
    value = "".join(random.choice(_ALPHABET) for _ in range(length))
    return name, str(client.create_secret(Name=name, SecretString=value)["ARN"])


def seed_template_secrets(client: Any, template_secrets: dict[str, str], state: dict[str, Any]) -> dict[str, Any]:
    """The automation account's world state without the template's secrets, whose world values
    (an earlier run's fingerprint key) replace the generated ones."""
    given = dict(state.get("secrets") or {})
    for name, arn in template_secrets.items():
        if name in given:
            client.put_secret_value(SecretId=arn, SecretString=given.pop(name))
    return {**state, "secrets": given}


def template_secret_values(client: Any, template_secrets: dict[str, str]) -> dict[str, str]:
    """The template's secrets as the world keeps them (name -> current value)."""
    return {name: client.get_secret_value(SecretId=arn)["SecretString"] for name, arn in template_secrets.items()}


def operator_session(principal_arn: str, admin_iam: Callable[[str], Any], region: str, partition: str) -> boto3.Session:
    """A session of the operator's role (created if missing, trusting its own account, as an
    IAM Identity Center permission set's role would); `admin_iam(account)` is the emulator's
    administrator there."""
    account, path_and_name = principal_arn.split(":")[4], principal_arn.split(":", 5)[5].removeprefix("role")
    path, _, name = path_and_name.rpartition("/")
    iam = admin_iam(account)
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam.create_role(RoleName=name, Path=f"{path}/", AssumeRolePolicyDocument=json.dumps(trust))
    return worlds.account_session(account, region, name, path=f"{path}/")
