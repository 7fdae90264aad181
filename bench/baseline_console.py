"""BASELINE, not the product: the seed console procedure, scripted literally with boto3.

`/work/shared/reference/seed-cross-account-s3-role.txt` as an operator would follow it,
with only its placeholders filled in:

1. create `atc-s3-assume-role` in the cluster manager account with the seed's document,
   including its Resource `arn:aws:s3::<s3 account>/atc-s3-access-keys` (not a role ARN);
2. attach it to `atc-node`;
3. paste the seed's trust document into the access role: this REPLACES the trust policy.

No reads, no checks, no merge. Each step is a separate console procedure, so a failing
step does not stop the next one. The bench runs it on moto against the sample world,
with operator credentials in each account from STS, and counts its calls.

Run on its own: `.venv/bin/python -m bench.baseline_console` prints the JSON report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.checks import access_report

REGION = "us-east-1"
OPERATOR_ROLE = "OrganizationAccountAccessRole"

#: Step 1's document, verbatim from the seed (placeholder `s3_account_id`).
SEED_ASSUME_POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": "sts:AssumeRole",
      "Resource": "arn:aws:s3::s3_account_id/atc-s3-access-keys"
    }
  ]
}"""

#: Step 3's document, verbatim (placeholders `cluster_manager_account_id`, `external_id`).
SEED_TRUST_POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {
        "AWS": "arn:aws:iam::cluster_manager_account_id:role/atc-node"
      },
      "Action": "sts:AssumeRole",
      "Condition": {
        "StringEquals": {
          "sts:ExternalId": "external_id"
        }
      }
    }
  ]
}"""


def seed_documents(cm_account: str, s3_account: str, external_id: str) -> tuple[str, str]:
    """The two documents with the operator's values typed over the placeholders."""
    policy = SEED_ASSUME_POLICY.replace("s3_account_id", s3_account)
    trust = SEED_TRUST_POLICY.replace("cluster_manager_account_id", cm_account).replace("external_id", external_id)
    return policy, trust


class CallCounter:
    """Counts every API call the script's clients make (failed calls count too)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def watch(self, client: Any) -> Any:
        prefix = client.meta.service_model.endpoint_prefix

        def count(model: Any, **_: Any) -> None:
            self.calls.append(f"{prefix}:{model.name}")

        client.meta.events.register("before-call", count)
        return client


def _operator_iam(counter: CallCounter, sts: Any, account: str) -> Any:
    """The operator signs in to `account` (one STS call) and opens IAM there."""
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{OPERATOR_ROLE}", RoleSessionName="console")[
        "Credentials"
    ]
    return counter.watch(
        boto3.client(
            "iam",
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    )


def console_procedure(cm_account: str, s3_account: str, external_id: str) -> dict[str, Any]:
    """The three seed steps, literally. Returns calls and each step's outcome."""
    counter = CallCounter()
    sts = counter.watch(boto3.client("sts", region_name=REGION))
    cm_iam = _operator_iam(counter, sts, cm_account)
    s3_iam = _operator_iam(counter, sts, s3_account)
    policy, trust = seed_documents(cm_account, s3_account, external_id)
    policy_arn = f"arn:aws:iam::{cm_account}:policy/atc-s3-assume-role"
    steps = [
        (
            "1 create atc-s3-assume-role",
            lambda: cm_iam.create_policy(PolicyName="atc-s3-assume-role", PolicyDocument=policy),
        ),
        ("2 attach it to atc-node", lambda: cm_iam.attach_role_policy(RoleName="atc-node", PolicyArn=policy_arn)),
        (
            "3 replace the trust policy of atc-s3-access-keys",
            lambda: s3_iam.update_assume_role_policy(RoleName="atc-s3-access-keys", PolicyDocument=trust),
        ),
    ]
    outcomes = []
    for name, call in steps:
        try:
            call()
            outcomes.append({"step": name, "ok": True, "error": None})
        except ClientError as exc:
            error = exc.response.get("Error", {})
            outcomes.append({"step": name, "ok": False, "error": f"{error.get('Code')}: {error.get('Message')}"})
    writes = [c for c in counter.calls if not c.startswith("sts:")]
    return {
        "calls": len(counter.calls),
        "writes_attempted": len(writes),
        "writes_succeeded": sum(o["ok"] for o in outcomes),
        "iam_writes_attempted": sum(c.startswith("iam:") for c in writes),
        "by_operation": counter.calls,
        "steps": outcomes,
    }


def _iam(account: str) -> Any:
    from atc_xaccount_cli.local.world import account_session

    return account_session(account, REGION, OPERATOR_ROLE).client("iam")


def _read_back(cm_account: str, s3_account: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The access role's trust policy, and the documents attached to atc-node."""
    trust = _iam(s3_account).get_role(RoleName="atc-s3-access-keys")["Role"]["AssumeRolePolicyDocument"]
    cm = _iam(cm_account)
    docs = []
    for attached in cm.list_attached_role_policies(RoleName="atc-node")["AttachedPolicies"]:
        meta = cm.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        doc = cm.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=meta["DefaultVersionId"])
        docs.append(doc["PolicyVersion"]["Document"])
    return trust, docs


def run_baseline(world: dict[str, Any], detail: dict[str, Any], external_id: str) -> dict[str, Any]:
    """Seed `world` on moto, run the procedure twice (first run, re-run), report the damage."""
    from atc_xaccount_cli.local.world import account_session, seed_account

    cm, s3 = detail["clusterManagerAccountId"], detail["s3AccountId"]
    before_trust = world["accounts"][s3]["roles"]["atc-s3-access-keys"]["trust"]
    with mock_aws():
        for account, state in world["accounts"].items():
            seed_account(account_session(account, REGION, OPERATOR_ROLE), account, state, "aws")
        first = console_procedure(cm, s3, external_id)
        after_trust, identity_docs = _read_back(cm, s3)
        rerun = console_procedure(cm, s3, external_id)
    policy_as_written, _ = seed_documents(cm, s3, external_id)
    access = access_report(
        before_trust=before_trust,
        after_trust=after_trust,
        identity_docs=identity_docs,
        node_role_arn=f"arn:aws:iam::{cm}:role/atc-node",
        access_role_arn=f"arn:aws:iam::{s3}:role/atc-s3-access-keys",
        external_id=external_id,
    )
    # Even had IAM stored the seed's document, its Resource is not the role's ARN.
    if_accepted = access_report(
        before_trust=before_trust,
        after_trust=after_trust,
        identity_docs=[json.loads(policy_as_written)],
        node_role_arn=f"arn:aws:iam::{cm}:role/atc-node",
        access_role_arn=f"arn:aws:iam::{s3}:role/atc-s3-access-keys",
        external_id=external_id,
    )
    return {
        "label": "BASELINE: seed console procedure scripted literally (not this project)",
        "calls": first["calls"],
        "writes_attempted": first["writes_attempted"],
        "writes_succeeded": first["writes_succeeded"],
        "iam_writes_attempted": first["iam_writes_attempted"],
        "by_operation": first["by_operation"],
        "steps": first["steps"],
        "calls_rerun": rerun["calls"],
        "writes_attempted_rerun": rerun["writes_attempted"],
        "steps_rerun": rerun["steps"],
        "statements_lost": access["statements_lost"],
        "lost": access["lost"],
        "services_lost": access["services_lost"],
        "other_grants_broken": access["other_grants_broken"],
        "access_works": access["access_works"],
        "trust_admits_node_role": access["trust_admits_node_role"],
        "identity_allows_assume": access["identity_allows_assume"],
        "identity_allows_if_policy_had_been_accepted": if_accepted["identity_allows_assume"],
        "identity_reason_if_accepted": if_accepted["identity_reason"],
    }


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    event = json.loads((root / "events" / "cluster-registered.json").read_text(encoding="utf-8"))
    world = json.loads((root / "events" / "sample-world.json").read_text(encoding="utf-8"))
    report = run_baseline(world, event["detail"], "bench0external0id0000000000000001")
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
