"""Sessions into target accounts through the bootstrap automation role.

Every step reaches the cluster manager and S3 accounts by assuming the automation role
(DESIGN 2). One `AccountSessions` lives for one Lambda invocation, so each account is
assumed at most once per step, and sessions stay well under the one-hour chaining limit.

botocore is imported on the first client, not with this module: a step that makes no AWS
call never pays for it, and Lambda's clients come from a plain botocore session (boto3
adds only resources and S3 transfers, which no step uses, at ~20 ms more import).
"""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING, Any

from atc_xaccount.arns import role_arn
from atc_xaccount.errors import AutomationRoleUnavailable

if TYPE_CHECKING:
    import boto3
    import botocore.session
    from botocore.client import BaseClient
    from botocore.config import Config

#: Standard retry mode retries throttling and transient errors with backoff and jitter.
CLIENT_RETRIES = {"mode": "standard", "max_attempts": 5}

#: Short sessions: a step takes seconds, and role chaining caps sessions at one hour.
SESSION_SECONDS = 900

_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]", re.ASCII)  # AWS allows ASCII only

# One botocore session per process: its loaded service models are reused by every client
# of every invocation (warm starts), and client creation is serialized because sessions
# are not thread-safe.
_BASE_LOCK = threading.Lock()
_BASE: dict[str, botocore.session.Session] = {}


@functools.cache
def client_config() -> Config:
    """The configuration of every client the steps create (standard retries)."""
    from botocore.config import Config

    # A copy: botocore rewrites the dict it is given (max_attempts -> total_max_attempts).
    return Config(retries=dict(CLIENT_RETRIES))  # type: ignore[arg-type]


def shared_session(region: str) -> botocore.session.Session:
    """The process's botocore session for `region`; call with `_BASE_LOCK` held."""
    if region not in _BASE:
        import botocore.session

        session = botocore.session.get_session()
        session.set_config_variable("region", region)
        _BASE[region] = session
    return _BASE[region]


def session_name(execution: str | None) -> str:
    """A RoleSessionName that shows up in CloudTrail next to the execution it served."""
    base = f"atc-xaccount-{execution or 'manual'}"
    return _SESSION_NAME_UNSAFE.sub("-", base)[:64]


class AccountSessions:
    """Per-invocation cache of clients, one set per target account.

    `base_session` (the CLI's and the tests' boto3 session) supplies the caller's
    credentials; without it, clients come from the process's shared botocore session.
    """

    def __init__(
        self,
        *,
        automation_role_name: str,
        partition: str,
        region: str,
        execution: str | None = None,
        base_session: boto3.Session | None = None,
        writer_role_name: str | None = None,
    ) -> None:
        self.automation_role_name = automation_role_name
        #: The role the workflows write with: the role assumed, unless an operator reads
        #: through the read-only role (plan proves the writes the automation role would make).
        self.writer_role_name = writer_role_name or automation_role_name
        self.partition = partition
        self.region = region
        self._session_name = session_name(execution)
        self._base = base_session
        self._credentials: dict[str, dict[str, str]] = {}
        self._clients: dict[tuple[str, str], BaseClient] = {}
        # A step may read several accounts at once: one lock per credential and per client,
        # so each account is still assumed once and each client created once.
        self._locks_guard = threading.Lock()
        self._locks: dict[tuple[str, ...], threading.Lock] = {}

    def _lock(self, *key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def automation_role_arn(self, account_id: str) -> str:
        return role_arn(self.partition, account_id, self.automation_role_name)

    def writer_role_arn(self, account_id: str) -> str:
        return role_arn(self.partition, account_id, self.writer_role_name)

    def credentials(self, account_id: str) -> dict[str, str]:
        """Assume the automation role in `account_id` once; reuse it afterwards."""
        with self._lock("credentials", account_id):
            return self._assumed(account_id)

    def _assumed(self, account_id: str) -> dict[str, str]:
        from botocore.exceptions import ClientError

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
        with self._lock("client", service, account_id):
            if key not in self._clients:
                self._clients[key] = self._new_client(service, self.credentials(account_id))
        return self._clients[key]

    def local_client(self, service: str) -> Any:
        """A client in the automation account itself (secrets, STS)."""
        key = (service, "")
        with self._lock("client", service, ""):
            if key not in self._clients:
                self._clients[key] = self._new_client(service, {})
        return self._clients[key]

    def _new_client(self, service: str, credentials: dict[str, str]) -> Any:
        """A client on the caller's boto3 session, else on the process's botocore session."""
        config = client_config()
        with _BASE_LOCK:
            if self._base is not None:
                return self._base.client(service, region_name=self.region, config=config, **credentials)
            return shared_session(self.region).create_client(
                service,
                region_name=self.region,
                config=config,
                aws_access_key_id=credentials.get("aws_access_key_id"),
                aws_secret_access_key=credentials.get("aws_secret_access_key"),
                aws_session_token=credentials.get("aws_session_token"),
            )
