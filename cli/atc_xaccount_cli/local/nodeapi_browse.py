"""What an ATC node does when its access key is browsed: assume the role, list the bucket.

The emulated Node API (`nodeapi.py`) answers `POST /files/browse` through an access key
the way the cluster's nodes would reach S3, and with the proof of access's judges:

- the node's own credentials are a session of the cluster's node role (`atc-node`), as
  its EC2 instance profile hands them out;
- the access role's trust policy must admit that role with the key's external ID:
  judged by atc-xaccount's trust evaluator (moto does not evaluate trust across accounts);
- `sts:AssumeRole` on the access role, then `s3:ListBucket` on the bucket, are
  authorized by moto's IAM authorization, for these sessions only: requests signed with
  credentials this module obtained are checked as with moto's authorization on
  (signature, identity policies), every other request passes as before — the steps'
  own calls and the state machine's are not affected by a browse running beside them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends

from atc_xaccount.arns import split_arn
from atc_xaccount.evaluate import evaluate_trust


class StorageRefused(Exception):
    """The node could not reach the key's storage; the message is what the Node API reports."""


@dataclass(frozen=True)
class Listing:
    prefix: str
    entries: list[dict[str, Any]]


class NodeSessions:
    """Credentials the emulated nodes obtained; requests signed with them are authorized by moto."""

    def __init__(self, region: str, partition: str) -> None:
        self.region = region
        self.partition = partition
        self._issued: set[str] = set()
        self._lock = threading.Lock()

    def _keep(self, creds: dict[str, Any]) -> boto3.Session:
        with self._lock:
            self._issued.add(creds["AccessKeyId"])
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.region,
        )

    def issued(self, access_key_id: str) -> bool:
        with self._lock:
            return access_key_id in self._issued

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Authorize the nodes' requests with moto's checks (chained over whatever is installed)."""
        original = ActionAuthenticatorMixin._authenticate_and_authorize_action
        sessions = self

        def authenticate_and_authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
            scope = (response.headers.get("Authorization") or "").partition("Credential=")[2].split("/")
            if not scope[0] or not sessions.issued(scope[0]):
                original(response, iam_request_cls, resource)
                return
            parsed = urlparse(response.uri)
            request = iam_request_cls(
                account_id=response.current_account,
                method=response.method,
                path=response.raw_path + (f"?{parsed.query}" if parsed.query else ""),
                data=response.data,
                body=response.raw_body,
                headers=response.headers,
                action=response._get_action(),
            )
            request.check_signature()
            # The trust policy was judged before the call, by atc-xaccount's evaluator.
            request._check_role_trust_relationship = lambda role_arn: True
            request.check_action_permitted(resource)

        ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_authorize  # type: ignore[method-assign]
        try:
            yield
        finally:
            ActionAuthenticatorMixin._authenticate_and_authorize_action = original  # type: ignore[method-assign]

    # --- the node's path to the bucket -------------------------------------------------------

    def list_storage(self, node_role_arn: str, storage: dict[str, Any], path: str, count: int) -> Listing:
        """Assume the key's role as the node role with the key's external ID, then list the key's path."""
        creds = storage.get("credentials") or {}
        role_arn, external_id = creds.get("assume_role_arn", ""), creds.get("assume_role_external_id")
        session_name = creds.get("assume_role_session_name") or "assumed-atcm"
        trust = self._trust(role_arn)
        admitted = evaluate_trust(trust, node_role_arn, external_id)
        if not admitted.allowed:
            raise StorageRefused(
                f"AccessDenied: {node_role_arn} is not authorized to perform: sts:AssumeRole on resource: "
                f"{role_arn} ({admitted.reason})"
            )
        node = self._node_session(node_role_arn)
        try:
            assumed = node.client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=session_name, ExternalId=external_id
            )["Credentials"]
        except ClientError as exc:
            raise StorageRefused(_aws_error(exc)) from exc
        prefix = _key_prefix(storage.get("path"), path)
        s3 = self._keep(assumed).client("s3")
        try:
            listed = s3.list_objects_v2(Bucket=storage.get("bucket", ""), Prefix=prefix, Delimiter="/", MaxKeys=count)
        except ClientError as exc:
            raise StorageRefused(_aws_error(exc)) from exc
        entries = [
            {"path": "/" + p["Prefix"][len(prefix) :].rstrip("/"), "type": "directory", "size": 0}
            for p in listed.get("CommonPrefixes", [])
        ]
        entries += [
            {"path": "/" + o["Key"][len(prefix) :], "type": "file", "size": o["Size"]}
            for o in listed.get("Contents", [])
            if o["Key"] != prefix
        ]
        for entry in entries:
            entry["basename"] = entry["path"].rsplit("/", 1)[-1]
        return Listing(prefix, entries)

    def _trust(self, role_arn: str) -> dict[str, Any]:
        role = _role(role_arn)
        if role is None:
            raise StorageRefused(f"NoSuchEntity: the role {role_arn} cannot be assumed")
        document = role.assume_role_policy_document
        parsed: dict[str, Any] = json.loads(document) if isinstance(document, str) else document
        return parsed

    def _node_session(self, node_role_arn: str) -> boto3.Session:
        """The node's instance credentials: a session of the node role (which must exist)."""
        if _role(node_role_arn) is None:
            raise StorageRefused(f"the node role {node_role_arn} does not exist")
        creds = boto3.client("sts", region_name=self.region).assume_role(
            RoleArn=node_role_arn, RoleSessionName="atc-node-instance"
        )["Credentials"]
        return self._keep(creds)


def _role(arn: str) -> Any:
    """moto's role for an ARN, or None (not an ARN, or no such role)."""
    try:
        partition, _, _, account, resource = split_arn(arn)
        return iam_backends[account][partition].get_role(resource.rsplit("/", 1)[-1])
    except (ValueError, KeyError, NotFoundException):
        return None


def _key_prefix(storage_path: object, path: str) -> str:
    """The S3 prefix of the key's storage path joined with the browsed path ("" or "dir/")."""
    joined = "/".join(p.strip("/") for p in (str(storage_path or ""), path) if p.strip("/"))
    return f"{joined}/" if joined else ""


def _aws_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code')}: {error.get('Message')}"
