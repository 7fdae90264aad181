"""An emulated IBM Aspera Node API for each cluster a world declares (`nodeApis`).

The steps' Node API client (`atc_xaccount.node_api`) sends its requests through one
function, `send`; while the emulator runs, that function is answered here, in-process,
for the URLs the world names (any other URL does not resolve, as on a real network).
What the emulated Node API enforces, as its OpenAPI 4.4.6 description documents it:

- HTTP Basic auth: a node user (`users`, with its password) may manage `/access_keys`
  only with the ACL `key_master` (403 otherwise); an access key's id and secret open
  `GET /self` and `POST /files/browse`; anything else is 401;
- `POST /access_keys` validated against `accessKeyRequest` (and no undeclared field):
  400 with the problems; storage `aws_s3` needs `bucket`, `endpoint` and `credentials`,
  `assume-role` needs `assume_role_arn` and `assume_role_external_id`; 409 on an
  existing id; the id and secret are generated when absent (and then returned); a node
  user with `restrictions` (glob patterns over `s3://ENDPOINT/BUCKET/PATH`) may create
  keys only for storage within them ("the creator of the access key must be authorized
  to access the storage path"), else 400;
- `GET`/`PUT`/`DELETE /access_keys/{id}` (404 for an unknown id; PUT validated against
  `accessKeyPUTRequest`, merged, 204; DELETE 204); a GET shows the storage without its
  credentials (`accessKeyStorageResponse` has none);
- `POST /files/browse` through a key: the node assumes the key's role as the world's
  `nodeRole` with the key's external ID — the trust policy judged by atc-xaccount's
  evaluator, the calls by moto's IAM authorization (`nodeapi_browse.py`) — and lists
  the bucket under the key's path; a refused step is an error answer naming it.

Calls are counted under `nodeapi:<Operation>` for the step that made them, and the
run's `--faults` apply to them (`EnsureAccessKey/nodeapi:Browse=propagation:1:2`).
"""

from __future__ import annotations

import base64
import contextvars
import copy
import fnmatch
import json
import secrets
import string
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

from botocore.exceptions import ClientError

from atc_xaccount import node_api
from atc_xaccount.node_api_config import canonical_url
from atc_xaccount_cli.local import node_api_schema
from atc_xaccount_cli.local.nodeapi_browse import NodeSessions, StorageRefused

KEY_MASTER = "key_master"
NODE_API_KEYS = {"nodeRole", "users", "accessKeys", "reachable"}
_ALPHABET = string.ascii_letters + string.digits


def validate_node_apis(value: Any) -> None:
    """Refuse a malformed `nodeApis` with the path of the first problem, before seeding."""
    from atc_xaccount_cli.local.world_error import WorldError

    if not isinstance(value, dict):
        raise WorldError("nodeApis: must be an object keyed by the Node API's URL")
    for url, api in value.items():
        where = f"nodeApis.{url}"
        if canonical_url(url) != url:
            raise WorldError(
                f"{where}: must be an https:// URL as a registration gives it (lower case, no '/' at the end)"
            )
        if not isinstance(api, dict) or set(api) - NODE_API_KEYS:
            raise WorldError(f"{where}: must be an object with {', '.join(sorted(NODE_API_KEYS))}")
        role = api.get("nodeRole")
        if not isinstance(role, str) or ":role/" not in role:
            raise WorldError(f"{where}.nodeRole: the ARN of the role the cluster's nodes carry (atc-node)")
        users = api.get("users")
        if not isinstance(users, dict) or not users:
            raise WorldError(f"{where}.users: node users, {{name: {{password, acl}}}}")
        for name, user in users.items():
            if (
                not isinstance(user, dict)
                or set(user) - {"password", "acl", "restrictions"}
                or not isinstance(user.get("password"), str)
                or not isinstance(user.get("acl", []), list)
                or not isinstance(user.get("restrictions", []), list)
            ):
                raise WorldError(
                    f"{where}.users.{name}: must be {{password: string, acl: [string], restrictions: [pattern]}}"
                )
        for key_id, key in (api.get("accessKeys") or {}).items():
            if not isinstance(key, dict) or set(key) != {"secret", "storage"} or not isinstance(key["storage"], dict):
                raise WorldError(f"{where}.accessKeys.{key_id}: must be {{secret, storage}}")
        if not isinstance(api.get("reachable", True), bool):
            raise WorldError(f"{where}.reachable: true or false (false: the network path is missing)")


def _error(status: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    """The documented `error` object."""
    return status, {"error": {"code": status, "reason": reason, "user_message": message}}


class EmulatedNodeApis:
    """Every Node API of the world, and the seam that answers the steps' client."""

    def __init__(self, dispatcher: Any, region: str, partition: str) -> None:
        self.dispatcher = dispatcher
        self.apis: dict[str, dict[str, Any]] = {}
        self.nodes = NodeSessions(region, partition)
        self._lock = threading.RLock()

    def seed(self, value: dict[str, Any]) -> None:
        validate_node_apis(value)
        with self._lock:
            for url, api in value.items():
                self.apis[url] = copy.deepcopy({"accessKeys": {}, **api})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {url: copy.deepcopy(api) for url, api in sorted(self.apis.items())}

    @staticmethod
    def node_user_secrets(session: Any, prefix: str) -> dict[str, str]:
        """The automation account's Node API user secrets (`NodeApiSecretPrefix*`), for the world."""
        client = session.client("secretsmanager")
        found: dict[str, str] = {}
        for page in client.get_paginator("list_secrets").paginate():
            for secret in page["SecretList"]:
                if secret["Name"].startswith(prefix):
                    value = client.get_secret_value(SecretId=secret["ARN"], VersionStage="AWSCURRENT")
                    found[secret["Name"]] = value["SecretString"]
        return found

    @contextmanager
    def installed(self) -> Iterator[None]:
        with self.nodes.installed(), patch.object(node_api, "send", self.send):
            yield

    # --- the transport ----------------------------------------------------------------------

    def send(self, request: node_api.HttpRequest) -> node_api.HttpResponse:
        """Count the call for its step, inject the run's faults, then answer outside the step."""
        step, execution = self.dispatcher.current_step, self.dispatcher.current_execution
        key = f"nodeapi:{request.operation}"
        if step is not None:
            self.dispatcher.ledger.add(step, key, execution)
            if self.dispatcher.before_call is not None:
                try:
                    self.dispatcher.before_call(step, key, {"url": request.url})
                except ClientError as exc:
                    error = exc.response.get("Error", {})
                    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
                    return _response(*_error(status, str(error.get("Code")), str(error.get("Message"))))
        # The node's own AWS calls are not the step's: a fresh context has no step in it.
        return contextvars.Context().run(self._answer, request)

    def _answer(self, request: node_api.HttpRequest) -> node_api.HttpResponse:
        url, api = self._api_of(request.url)
        if api is None or not api.get("reachable", True):
            raise node_api.TransportError(f"URLError: cannot connect to {request.url.split('/')[2]}")
        path = request.url[len(url) :] or "/"
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            return _response(*_error(400, "Bad Request", "the body is not JSON"))
        who = self._who(api, request.headers.get("Authorization", ""))
        if who is None:
            return _response(*_error(401, "Unauthorized", "invalid credentials"))
        return _response(*self._route(api, request.method, path, who, body))

    def _api_of(self, request_url: str) -> tuple[str, dict[str, Any] | None]:
        with self._lock:
            for url, api in self.apis.items():
                if request_url == url or request_url.startswith(url + "/"):
                    return url, api
        return "", None

    @staticmethod
    def _who(api: dict[str, Any], authorization: str) -> tuple[str, str] | None:
        """("user", name) or ("key", id) for valid Basic credentials, else None."""
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        if scheme != "Basic":
            return None
        known = (api.get("users") or {}).get(user)
        if known is not None and secrets.compare_digest(known["password"], password):
            return "user", user
        key = (api.get("accessKeys") or {}).get(user)
        if key is not None and secrets.compare_digest(key["secret"], password):
            return "key", user
        return None

    def _route(self, api: dict[str, Any], method: str, path: str, who: tuple[str, str], body: Any) -> Any:
        kind, name = who
        if path in ("/self", "/access_keys/self") and method == "GET":
            return (
                (200, self._metadata(name, api["accessKeys"][name]))
                if kind == "key"
                else _error(400, "Bad Request", "/self needs an access key's credentials")
            )
        if path == "/files/browse" and method == "POST":
            if kind != "key":
                return _error(403, "Forbidden", "the emulated Node API browses through access keys only")
            return self._browse(api, name, body)
        if path == "/access_keys" or path.startswith("/access_keys/"):
            if kind != "user" or KEY_MASTER not in (api["users"][name].get("acl") or []):
                return _error(403, "Forbidden", f"managing access keys needs a node user with the {KEY_MASTER} ACL")
            user = api["users"][name]
            return self._access_keys(api, user, method, path.removeprefix("/access_keys").strip("/"), body)
        return _error(404, "Not Found", f"{method} {path} is not served by the emulated Node API")

    # --- /access_keys -----------------------------------------------------------------------

    def _access_keys(self, api: dict[str, Any], user: dict[str, Any], method: str, key_id: str, body: Any) -> Any:
        from urllib.parse import unquote

        key_id = unquote(key_id)
        keys: dict[str, Any] = api["accessKeys"]
        with self._lock:
            if not key_id and method == "GET":
                return 200, [self._metadata(k, v) for k, v in sorted(keys.items())]
            if not key_id and method == "POST":
                return self._create(keys, body, user.get("restrictions"))
            if key_id not in keys:
                return _error(404, "Not Found", f"no access key {key_id}")
            if method == "GET":
                return 200, self._metadata(key_id, keys[key_id])
            if method == "DELETE":
                del keys[key_id]
                return 204, None
            if method == "PUT":
                return self._update(keys, key_id, body, user.get("restrictions"))
        return _error(400, "Bad Request", f"{method} is not an access key operation")

    def _create(self, keys: dict[str, Any], body: Any, restrictions: list[str] | None) -> Any:
        problems = node_api_schema.problems(body, "accessKeyRequest") or _storage_problems(
            body.get("storage") if isinstance(body, dict) else None, restrictions
        )
        if problems:
            return _error(400, "Bad Request", "; ".join(problems))
        key_id = body.get("id") or "".join(secrets.choice(_ALPHABET) for _ in range(44))
        if key_id in keys:
            return _error(409, "Conflict", "The access key id already exists.")
        generated = "secret" not in body
        keys[key_id] = {"secret": body.get("secret") or secrets.token_urlsafe(32), "storage": body["storage"]}
        answer = self._metadata(key_id, keys[key_id])
        if generated:
            answer["secret"] = keys[key_id]["secret"]
        return 200, answer

    def _update(self, keys: dict[str, Any], key_id: str, body: Any, restrictions: list[str] | None) -> Any:
        problems = node_api_schema.problems(body, "accessKeyPUTRequest")
        if problems:
            return _error(400, "Bad Request", "; ".join(problems))
        merged = _merge(keys[key_id], body)
        problems = _storage_problems(merged["storage"], restrictions)
        if problems:
            return _error(400, "Bad Request", "; ".join(problems))
        keys[key_id] = {"secret": merged["secret"], "storage": merged["storage"]}
        return 204, None

    @staticmethod
    def _metadata(key_id: str, key: dict[str, Any]) -> dict[str, Any]:
        """`accessKeyGETMetadata`: the storage as `accessKeyStorageResponse` shows it (no credentials)."""
        shown = {k: v for k, v in key["storage"].items() if k != "credentials"}
        return {"id": key_id, "root_file_id": "1", "storage": shown}

    # --- /files/browse ----------------------------------------------------------------------

    def _browse(self, api: dict[str, Any], key_id: str, body: Any) -> Any:
        problems = node_api_schema.problems(body, "filesBrowseRequest")
        if problems:
            return _error(400, "Bad Request", "; ".join(problems))
        with self._lock:
            storage = copy.deepcopy(api["accessKeys"][key_id]["storage"])
        try:
            listing = self.nodes.list_storage(api["nodeRole"], storage, body["path"], int(body.get("count", 100)))
        except StorageRefused as exc:
            return _error(500, "Internal Server Error", f"cannot access the storage of the access key: {exc}")
        return 200, {
            "self": {"path": body["path"], "basename": "", "type": "directory", "size": 0},
            "items": listing.entries,
        }


def _storage_problems(storage: Any, restrictions: list[str] | None = None) -> list[str]:
    """What the field descriptions require of S3 storage (the schema only says `type` is required)."""
    if not isinstance(storage, dict):
        return ["storage: required"]
    if storage.get("type") != "aws_s3":
        return [f"storage.type: the emulated Node API serves aws_s3 storage, not {storage.get('type')!r}"]
    problems = [f"storage.{k}: required for Amazon S3" for k in ("bucket", "endpoint") if not storage.get(k)]
    creds = storage.get("credentials")
    if not isinstance(creds, dict):
        return [*problems, "storage.credentials: required for storage other than local"]
    if creds.get("type") != "assume-role":
        problems.append(
            f"storage.credentials.type: the emulated Node API serves assume-role, not {creds.get('type')!r}"
        )
    for field in ("assume_role_arn", "assume_role_external_id"):
        if not creds.get(field):
            problems.append(f"storage.credentials.{field}: required for assume-role")
    where = f"s3://{storage.get('endpoint')}/{storage.get('bucket')}/{str(storage.get('path') or '').strip('/')}"
    if not problems and restrictions is not None and not any(fnmatch.fnmatchcase(where, r) for r in restrictions):
        problems.append(f"storage: the node user is not authorized to access {where} (its restrictions)")
    return problems


def _merge(key: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A PUT may carry all or only the updated element-value pairs: objects merge, values replace."""
    merged = copy.deepcopy(key)
    for name, value in body.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merge(merged[name], value)
        else:
            merged[name] = copy.deepcopy(value)
    return merged


def _response(status: int, data: Any) -> node_api.HttpResponse:
    return node_api.HttpResponse(status, b"" if data is None else json.dumps(data).encode())
