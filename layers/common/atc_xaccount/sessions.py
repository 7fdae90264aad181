"""Sessions into target accounts through the bootstrap automation role.

Every step reaches the cluster manager and S3 accounts by assuming the automation role
(DESIGN 2). One `AccountSessions` lives for one Lambda invocation, so each account is
assumed at most once per step, and sessions stay well under the one-hour chaining limit.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from atc_xaccount.arns import role_arn
from atc_xaccount.errors import AutomationRoleUnavailable

if TYPE_CHECKING:
    from botocore.client import BaseClient

#: Standard retry mode retries throttling and transient errors with backoff and jitter.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})

#: Short sessions: a step takes seconds, and role chaining caps sessions at one hour.
SESSION_SECONDS = 900

_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]", re.ASCII)  # AWS allows ASCII only

# One botocore session per process: its loaded service models are reused by every client
# of every invocation (warm starts), and client creation is serialized because sessions
# are not thread-safe.
_BASE_LOCK = threading.Lock()
_BASE: dict[str, boto3.Session] = {}


def shared_session(region: str) -> boto3.Session:
    with _BASE_LOCK:
        if region not in _BASE:
            _BASE[region] = boto3.Session(region_name=region)
        return _BASE[region]


def session_name(execution: str | None) -> str:
    """A RoleSessionName that shows up in CloudTrail next to the execution it served."""
    base = f"atc-xaccount-{execution or 'manual'}"
    return _SESSION_NAME_UNSAFE.sub("-", base)[:64]


class AccountSessions:
    """Per-invocation cache of boto3 sessions, one per target account."""

    def __init__(
        self,
        *,
        automation_role_name: str,
        partition: str,
        region: str,
        execution: str | None = None,
        base_session: boto3.Session | None = None,
    ) -> None:
        self.automation_role_name = automation_role_name
        self.partition = partition
        self.region = region
        self._session_name = session_name(execution)
        self._base = base_session or shared_session(region)
        self._credentials: dict[str, dict[str, str]] = {}
        self._clients: dict[tuple[str, str], BaseClient] = {}

    def automation_role_arn(self, account_id: str) -> str:
        return role_arn(self.partition, account_id, self.automation_role_name)

    def credentials(self, account_id: str) -> dict[str, str]:
        """Assume the automation role in `account_id` once; reuse it afterwards."""
        if account_id not in self._credentials:
            arn = self.automation_role_arn(account_id)
            sts = self.local_client("sts")
            try:
                creds = sts.assume_role(
                    RoleArn=arn,
                    RoleSessionName=self._session_name,
                    DurationSeconds=SESSION_SECONDS,
                )["Credentials"]
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise AutomationRoleUnavailable(
                    account_id, arn, f"{error.get('Code')}: {error.get('Message')}"
                ) from exc
            self._credentials[account_id] = {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            }
        return self._credentials[account_id]

    def client(self, service: str, account_id: str) -> Any:
        """A client for `service` in `account_id`, created once per invocation."""
        key = (service, account_id)
        if key not in self._clients:
            credentials = self.credentials(account_id)
            with _BASE_LOCK:
                self._clients[key] = self._base.client(
                    service, region_name=self.region, config=CLIENT_CONFIG, **credentials
                )
        return self._clients[key]

    def local_client(self, service: str) -> Any:
        """A client in the automation account itself (secrets, STS)."""
        key = (service, "")
        if key not in self._clients:
            with _BASE_LOCK:
                self._clients[key] = self._base.client(service, region_name=self.region, config=CLIENT_CONFIG)
        return self._clients[key]
