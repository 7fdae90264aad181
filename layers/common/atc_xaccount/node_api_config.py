"""`detail.nodeApi`: where the cluster's Node API is and which secret holds its node user (pure).

A registration may name the cluster's IBM Aspera Node API; the workflow then creates the
cluster's access key itself (`steps/access_key.py`) instead of an operator typing the
external ID into Cluster Manager. Validated like every other field: each problem names
the field and the rule, before any write (docs/node-api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

FIELDS = frozenset({"url", "credentialsSecretArn", "path"})
DEFAULT_PATH = "/"

#: A Secrets Manager secret ARN: partition, region, account, `secret:` and the name (with
#: or without the 6-character suffix Secrets Manager appends; names are 1-512 characters).
SECRET_ARN_RE = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):secretsmanager:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):"
    r"(?P<account>\d{12}):secret:(?P<name>[A-Za-z0-9/_+=.@-]{1,512})"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_URL = 2048
MAX_PATH = 1024

Problems = list[tuple[str, str]]


@dataclass(frozen=True)
class NodeApiConfig:
    """The cluster's Node API: its base URL (https), the node user's secret, the key's path."""

    url: str
    credentials_secret_arn: str
    path: str = DEFAULT_PATH

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "credentialsSecretArn": self.credentials_secret_arn, "path": self.path}

    @property
    def secret_name(self) -> str:
        """The secret's name as the ARN gives it (the random suffix, if present, included)."""
        match = SECRET_ARN_RE.fullmatch(self.credentials_secret_arn)
        return match.group("name") if match else self.credentials_secret_arn


def parse_node_api(value: object, where: str, problems: Problems) -> NodeApiConfig | None:
    """The validated block, or None (absent, or with its problems appended)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append((where, "must be an object {url, credentialsSecretArn, path}"))
        return None
    start = len(problems)
    url = _url(value.get("url"), f"{where}.url", problems)
    arn = value.get("credentialsSecretArn")
    if arn is None:
        problems.append((f"{where}.credentialsSecretArn", "required"))
    elif not isinstance(arn, str) or SECRET_ARN_RE.fullmatch(arn) is None:
        problems.append(
            (
                f"{where}.credentialsSecretArn",
                "must be a Secrets Manager secret ARN: arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME",
            )
        )
    path = _path(value.get("path"), f"{where}.path", problems)
    for key in value:
        if key not in FIELDS:
            problems.append((f"{where}.{key}", "unknown field"))
    if len(problems) > start or url is None or not isinstance(arn, str):
        return None
    return NodeApiConfig(url=url, credentials_secret_arn=arn, path=path)


def canonical_url(value: object) -> str | None:
    """The URL as validation keeps it, or None when it is not a valid Node API URL."""
    return _url(value, "url", [])


def _url(value: object, where: str, problems: Problems) -> str | None:
    """The canonical base URL (scheme and host lower case, no trailing slash), or None."""
    if value is None:
        problems.append((where, "required"))
        return None
    rule = "must be an https:// URL of the cluster's Node API, e.g. https://node.example.com:9092"
    if not isinstance(value, str) or not value or len(value) > MAX_URL or _CONTROL_RE.search(value):
        problems.append((where, rule))
        return None
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        problems.append((where, f"{rule} (the port is not a number from 0 to 65535)"))
        return None
    if parts.scheme.lower() != "https":
        # The node user's password travels as HTTP Basic auth: never in clear text.
        problems.append((where, f"{rule} (https only: the node user's password is sent as Basic auth)"))
        return None
    if not parts.hostname:
        problems.append((where, f"{rule} (no host)"))
        return None
    if parts.username is not None or parts.password is not None:
        problems.append((where, "must not carry a user or password: they belong in the credentials secret"))
        return None
    if parts.query or parts.fragment:
        problems.append((where, f"{rule} (no query or fragment)"))
        return None
    host = parts.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"https://{netloc}{parts.path.rstrip('/')}"


def _path(value: object, where: str, problems: Problems) -> str:
    """The access key's path in the bucket ("/" for the whole bucket, as Cluster Manager asks)."""
    if value is None:
        return DEFAULT_PATH
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or len(value) > MAX_PATH
        or _CONTROL_RE.search(value)
        or ".." in value.split("/")
    ):
        problems.append((where, 'must be a path in the bucket starting with "/" ("/" for the whole bucket)'))
        return DEFAULT_PATH
    return value


def deployment_problems(
    config: NodeApiConfig, where: str, *, region: str, account: str | None, secret_prefix: str
) -> Problems:
    """Is the credentials secret one this deployment's steps may read (its region, account, name prefix)?

    The template grants `secretsmanager:GetSecretValue` on `NodeApiSecretPrefix*` in the
    stack's account and region only; anything else would fail after the IAM changes.
    """
    match = SECRET_ARN_RE.fullmatch(config.credentials_secret_arn)
    if match is None:
        return [(where, "must be a Secrets Manager secret ARN")]
    expected = f"a secret in {region}" + (f", account {account}" if account else "")
    expected += f", named {secret_prefix}... (the template parameter NodeApiSecretPrefix)"
    if (
        match.group("region") != region
        or (account and match.group("account") != account)
        or not match.group("name").startswith(secret_prefix)
    ):
        return [(where, f"must name {expected}")]
    return []
