"""The cluster's IBM Aspera Node API over HTTPS: its access keys, and a browse through one.

Requests follow the Node API's OpenAPI description (4.4.6, `docs/node-api.md`):
`POST /access_keys` (`accessKeyRequest`), `GET`/`PUT`/`DELETE /access_keys/{id}`,
`GET /self` and `POST /files/browse` (`filesBrowseRequest`). HTTP Basic auth: the node
user (ACL `key_master`) for `/access_keys`, the access key's own id and secret for
`/self` and the browse, which makes the node assume the role with the key's external ID.

Nothing here logs, and no body ever reaches a log or an error: an answer is reduced to its
status and the Node API's `error.reason`/`user_message`, with every secret the client
knows (password, key secret, external ID) replaced by `<redacted>`. TLS is always
verified (the system's CA bundle). `send` is the one function doing I/O: the embedded
emulator replaces it with its emulated Node API.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from atc_xaccount.errors import NodeApiCredentialsInvalid, NodeApiUnavailable

#: Seconds to connect and to wait for an answer; a browse assumes a role first.
TIMEOUT_SECONDS = 20.0
MAX_ANSWER_BYTES = 1 << 20
REDACTED = "<redacted>"


@dataclass(frozen=True)
class HttpRequest:
    """One request; `operation` names it for counting (e.g. `CreateAccessKey`)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    operation: str
    timeout: float = TIMEOUT_SECONDS


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


class TransportError(Exception):
    """No HTTP answer at all: DNS, connection, TLS, timeout."""


def send(request: HttpRequest) -> HttpResponse:
    """The request over HTTPS with TLS verified; an HTTP error status is an answer, not an exception."""
    prepared = urllib.request.Request(  # noqa: S310 - the URL is validated https:// (node_api_config)
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    context = ssl.create_default_context()
    try:
        with urllib.request.urlopen(prepared, timeout=request.timeout, context=context) as answer:  # noqa: S310
            return HttpResponse(answer.status, answer.read(MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpResponse(exc.code, exc.read(MAX_ANSWER_BYTES))
    except (TimeoutError, urllib.error.URLError, ssl.SSLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransportError(f"{type(exc).__name__}: {reason}") from exc


@dataclass(frozen=True)
class Answer:
    """The Node API's answer: status and parsed JSON (None when the body is not JSON)."""

    status: int
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self, hide: Iterable[str] = ()) -> str:
        """`HTTP 400: reason: user_message`, from the documented `error` object when there is one."""
        error = self.data.get("error") if isinstance(self.data, dict) else None
        parts = [str(error[k]) for k in ("reason", "user_message") if isinstance(error, dict) and error.get(k)]
        text = f"HTTP {self.status}" + (": " + ": ".join(parts) if parts else "")
        return scrub(text, hide)


def scrub(text: str, hide: Iterable[str]) -> str:
    for secret in sorted({s for s in hide if s and len(s) >= 2}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text[:500]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@dataclass
class NodeApiClient:
    """One Node API, as one node user; every call returns the Node API's answer."""

    url: str
    username: str
    password: str = field(repr=False)
    #: Where the node user came from, for the errors that name it.
    secret_arn: str = ""
    #: Secrets the answers must never echo (key secrets, external IDs), besides the password.
    hide: set[str] = field(default_factory=set, repr=False)

    def _call(
        self, operation: str, method: str, path: str, auth: str, body: Any = None, *, server_errors: bool = True
    ) -> Answer:
        """One request; a 5xx raises NodeApiUnavailable unless `server_errors` is False (the answer then)."""
        headers = {"Accept": "application/json", "Authorization": auth}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, separators=(",", ":")).encode()
        try:
            response = send(HttpRequest(method, self.url + path, headers, data, operation))
        except TransportError as exc:
            raise NodeApiUnavailable(self.url, operation, scrub(str(exc), self.secrets)) from exc
        try:
            parsed = json.loads(response.body) if response.body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        answer = Answer(response.status, parsed)
        if response.status >= 500 and server_errors:
            raise NodeApiUnavailable(self.url, operation, answer.describe(self.secrets))
        return answer

    @property
    def secrets(self) -> set[str]:
        return {self.password, *self.hide}

    def _as_node_user(self, operation: str, method: str, path: str, body: Any = None) -> Answer:
        answer = self._call(operation, method, path, basic(self.username, self.password), body)
        if answer.status in (401, 403):
            why = (
                f"refused the node user {self.username}"
                if answer.status == 401
                else f"says the node user {self.username} may not manage access keys"
            )
            raise NodeApiCredentialsInvalid(
                self.url, self.secret_arn, f"the Node API {why} ({answer.describe(self.secrets)})"
            )
        return answer

    # --- /access_keys, as the node user (key_master) ---------------------------------------

    def get_access_key(self, key_id: str) -> Answer:
        return self._as_node_user("GetAccessKey", "GET", f"/access_keys/{quote(key_id, safe='')}")

    def create_access_key(self, body: dict[str, Any]) -> Answer:
        return self._as_node_user("CreateAccessKey", "POST", "/access_keys", body)

    def update_access_key(self, key_id: str, body: dict[str, Any]) -> Answer:
        return self._as_node_user("UpdateAccessKey", "PUT", f"/access_keys/{quote(key_id, safe='')}", body)

    def delete_access_key(self, key_id: str) -> Answer:
        return self._as_node_user("DeleteAccessKey", "DELETE", f"/access_keys/{quote(key_id, safe='')}")

    # --- through the access key itself ------------------------------------------------------

    def key_self(self, key_id: str, key_secret: str) -> Answer:
        """`GET /self` as the key: 200 proves the secret opens the key (it is ours)."""
        return self._call("GetSelf", "GET", "/self", basic(key_id, key_secret), server_errors=False)

    def browse(self, key_id: str, key_secret: str, path: str = "/") -> Answer:
        """`POST /files/browse` as the key: the node assumes the role and lists the storage.

        A 5xx is an answer here: the schema documents 500 for a browse the server cannot
        serve (storage it cannot reach), which is what a refused AssumeRole looks like.
        """
        return self._call(
            "Browse", "POST", "/files/browse", basic(key_id, key_secret), browse_request(path), server_errors=False
        )


def browse_request(path: str = "/") -> dict[str, Any]:
    """`filesBrowseRequest`: the key's root, a few entries are enough to prove access."""
    return {"path": path, "count": 10}


def read_node_user(secrets: Any, secret_arn: str, url: str) -> tuple[str, str]:
    """(username, password) from the node user's secret; anything else is named, never shown."""
    from botocore.exceptions import ClientError

    from atc_xaccount.aws_errors import error_code

    try:
        value = secrets.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")["SecretString"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise NodeApiCredentialsInvalid(
            url, secret_arn, f"cannot read the secret ({error_code(exc)}: {message})"
        ) from exc
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if (
        not isinstance(parsed, dict)
        or not isinstance(parsed.get("username"), str)
        or not isinstance(parsed.get("password"), str)
        or not parsed["username"]
        or not parsed["password"]
        or ":" in parsed["username"]
    ):
        raise NodeApiCredentialsInvalid(url, secret_arn, "the secret is not a JSON object with username and password")
    return parsed["username"], parsed["password"]
