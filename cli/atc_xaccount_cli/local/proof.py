"""Proof of access after an onboarding, on the emulator.

Two halves, and the output says which is which:
- the *identity* side is enforced by moto (its IAM authorization switched on): atc-node's
  credentials may call sts:AssumeRole on the access role only because atc-s3-assume-role
  is attached, and the access role's credentials reach the bucket only through atc-s3-policy;
- the *trust* side is evaluated by the project's evaluator (moto does not evaluate trust
  policies across accounts), which must admit the node role with the external ID and
  refuse a wrong one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import IAMRequestBase

from atc_xaccount.chain import OK, ChainReport
from atc_xaccount.evaluate import evaluate_trust

ENFORCED = "enforced by the emulator (moto IAM authorization)"
NODE_API = (
    "the emulated Node API: its node assumed the role as atc-node with the key's external ID "
    "(trust: atc-xaccount's evaluator; AssumeRole and ListBucket: moto IAM authorization)"
)
EVALUATED = "evaluated by atc-xaccount's trust evaluator"
CHAIN = "evaluated by atc-xaccount's chain evaluator (moto does not enforce it)"

#: Links moto does not enforce at all: bucket policies, KMS key use, session length.
UNENFORCED_LINKS = ("bucket-policy:", "kms:", "session")


@dataclass
class ProofStep:
    claim: str
    ok: bool
    how: str
    detail: str = ""


@dataclass
class Proof:
    steps: list[ProofStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def add(self, claim: str, ok: bool, how: str, detail: str = "") -> None:
        self.steps.append(ProofStep(claim, ok, how, detail))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "steps": [s.__dict__ for s in self.steps]}


@contextmanager
def iam_authorization() -> Iterator[None]:
    """Switch moto's IAM authorization on for the calls inside the block.

    moto checks a trust policy only when the role is in the caller's own account, and
    then fails on statements with a `Service` principal; there the trust decision is
    taken by our evaluator, so both the same-account and cross-account paths agree.
    """
    saved = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
    original_trust_check = IAMRequestBase._check_role_trust_relationship
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    IAMRequestBase._check_role_trust_relationship = _evaluated_trust_check  # type: ignore[method-assign]
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = saved
        IAMRequestBase._check_role_trust_relationship = original_trust_check  # type: ignore[method-assign]


def _evaluated_trust_check(request: Any, role_arn: str) -> bool:
    role = request.backend.get_role_by_arn(role_arn)
    caller = request._access_key.arn
    # arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION -> arn:aws:iam::ACCOUNT:role/NAME
    if ":assumed-role/" in caller:
        prefix, _, rest = caller.partition(":assumed-role/")
        caller = prefix.replace(":sts:", ":iam:") + ":role/" + rest.split("/", 1)[0]
    external = request._data.get("ExternalId")
    external_id = external[0] if isinstance(external, list) else external
    document = role.assume_role_policy_document
    trust = json.loads(document) if isinstance(document, str) else document
    return evaluate_trust(trust, caller, external_id).allowed


def _session(creds: dict[str, str], region: str) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def _denied(call: Any) -> tuple[bool, str]:
    try:
        call()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        return code in {"AccessDenied", "AccessDeniedException", "403"}, code
    return False, "allowed"


def prove_access(
    *,
    node_role_arn: str,
    access_role_arn: str,
    external_id: str,
    trust_policy: dict[str, Any],
    bucket: str | None,
    region: str,
    chain: ChainReport | None = None,
) -> Proof:
    """Walk the path an ATC node takes to the bucket, and a wrong external ID's path.

    With `chain` (the doctor's evaluation of the same world), the links moto does not
    enforce are part of the proof too: the bucket policy, the KMS key, the session length,
    and any link whose verdict moto's identity check alone would miss (a boundary).
    """
    proof = Proof()
    admitted = evaluate_trust(trust_policy, node_role_arn, external_id)
    proof.add("trust policy admits atc-node with the external ID", admitted.allowed, EVALUATED, admitted.reason)
    wrong = evaluate_trust(trust_policy, node_role_arn, "not-the-external-id")
    proof.add("trust policy refuses atc-node with a wrong external ID", not wrong.allowed, EVALUATED, wrong.reason)

    # The node's own credentials, as its EC2 instance profile would hand them out.
    node_creds = boto3.client("sts", region_name=region).assume_role(
        RoleArn=node_role_arn, RoleSessionName="atc-node-instance"
    )["Credentials"]
    node = _session(node_creds, region)
    with iam_authorization():
        try:
            access_creds = node.client("sts").assume_role(
                RoleArn=access_role_arn, RoleSessionName="atc-access-key", ExternalId=external_id
            )["Credentials"]
        except ClientError as exc:
            proof.add("atc-node may call sts:AssumeRole on the access role", False, ENFORCED, str(exc))
            return proof
        proof.add("atc-node may call sts:AssumeRole on the access role", True, ENFORCED)
        if bucket is None:
            return proof
        s3 = _session(access_creds, region).client("s3")
        key = "atc-xaccount-proof/hello.txt"
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"hello from an ATC node\n")
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
            ok = body == b"hello from an ATC node\n" and key in listed
            proof.add(f"access role can put, get and list s3://{bucket}/{key}", ok, ENFORCED)
        except ClientError as exc:
            proof.add(f"access role can put, get and list in s3://{bucket}", False, ENFORCED, str(exc))
        denied, code = _denied(lambda: node.client("s3").put_object(Bucket=bucket, Key=key, Body=b"x"))
        proof.add("atc-node's own credentials cannot write the bucket directly", denied, ENFORCED, code)
    _add_chain(proof, chain)
    return proof


def _add_chain(proof: Proof, chain: ChainReport | None) -> None:
    for link in chain.links if chain else ():
        unenforced = link.name.startswith(UNENFORCED_LINKS)
        if unenforced or link.verdict != OK:
            detail = link.detail + (f"; fix: {link.fix}" if link.verdict != OK and link.fix else "")
            claim = link.claim if link.verdict == OK else f"{link.claim} ({link.verdict})"
            proof.add(claim, link.verdict == OK, CHAIN, detail)


def prove_access_key(proof: Proof, access_key: dict[str, Any], secrets: Any) -> None:
    """Browse through the access key the workflow created, as Cluster Manager's clients would."""
    from atc_xaccount.access_key_custody import read_key
    from atc_xaccount.node_api import NodeApiClient

    where = f"s3://{access_key['bucket']}/{str(access_key['path']).strip('/')}".rstrip("/")
    claim = f"Cluster Manager's access key browses {where} (Node API)"
    held = read_key(secrets, access_key["secretName"])
    if held is None or held.key_id != access_key["id"]:
        proof.add(claim, False, NODE_API, "the key's secret is not kept")
        return
    client = NodeApiClient(held.url, "", "", hide={held.secret})
    answer = client.browse(held.key_id, held.secret)
    proof.add(claim, answer.ok, NODE_API, "" if answer.ok else answer.describe(client.secrets))
