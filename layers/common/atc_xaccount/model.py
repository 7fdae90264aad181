"""The validated cluster request every step works from, parsed from the EventBridge event."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from atc_xaccount.arns import is_valid_account_id
from atc_xaccount.errors import InvalidEvent
from atc_xaccount.extid import is_valid_external_id
from atc_xaccount.node_api_config import NodeApiConfig, parse_node_api

ENVELOPE_FIELDS = frozenset(
    # "replay-name" is added by EventBridge to events replayed from an archive.
    {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail", "replay-name"}
)

_DETAIL_FIELDS = frozenset(
    {
        "clusterId",
        "clusterManagerAccountId",
        "s3AccountId",
        "buckets",
        "externalId",
        "nodeRoleName",
        "accessRoleName",
        "assumePolicyName",
        "accessPolicyName",
        "nodeApi",
    }
)

_CLUSTER_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ROLE_NAME_RE = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")
_POLICY_NAME_RE = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")
_BUCKET_CHARS_RE = re.compile(r"[a-z0-9.-]+")
_IP_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

Problems = list[tuple[str, str]]
Check = Callable[[object], str | None]


@dataclass(frozen=True)
class Defaults:
    """Role and policy names used when the event omits them; deploy-time configurable."""

    node_role_name: str = "atc-node"
    access_role_name: str = "atc-s3-access-keys"
    assume_policy_name: str = "atc-s3-assume-role"
    access_policy_name: str = "atc-s3-policy"

    def __post_init__(self) -> None:
        # A bad default is a deployment error, so it fails loudly rather than per event.
        for name, rx in (
            (self.node_role_name, _ROLE_NAME_RE),
            (self.access_role_name, _ROLE_NAME_RE),
            (self.assume_policy_name, _POLICY_NAME_RE),
            (self.access_policy_name, _POLICY_NAME_RE),
        ):
            if not isinstance(name, str) or rx.fullmatch(name) is None:
                raise ValueError(f"invalid default IAM name {name!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Defaults:
        """Read DEFAULT_*_NAME variables; unset or empty ones keep the built-in default."""
        base = cls()
        return cls(
            node_role_name=environ.get("DEFAULT_NODE_ROLE_NAME") or base.node_role_name,
            access_role_name=environ.get("DEFAULT_ACCESS_ROLE_NAME") or base.access_role_name,
            assume_policy_name=environ.get("DEFAULT_ASSUME_POLICY_NAME") or base.assume_policy_name,
            access_policy_name=environ.get("DEFAULT_ACCESS_POLICY_NAME") or base.access_policy_name,
        )


@dataclass(frozen=True)
class ClusterRequest:
    """One cluster's cross-account S3 access, fully resolved (defaults applied, validated)."""

    cluster_id: str
    cluster_manager_account_id: str
    s3_account_id: str
    buckets: tuple[str, ...]
    # Kept out of repr so logging a request never logs the shared secret.
    external_id: str | None = field(repr=False)
    node_role_name: str
    access_role_name: str
    assume_policy_name: str
    access_policy_name: str
    #: An ID the event gave, once the workflow moved it into the cluster's secret
    #: (`staged_ids`): only its fingerprint travels, and whether staging created the secret.
    requested_fingerprint: str | None = None
    requested_created: bool = False
    #: The cluster's Node API, when the workflow creates its access key (docs/node-api.md).
    node_api: NodeApiConfig | None = None

    @property
    def same_account(self) -> bool:
        """Cluster manager and buckets in one account: no cross-account hop, same changes."""
        return self.cluster_manager_account_id == self.s3_account_id

    def to_dict(self) -> dict[str, Any]:
        """The event-detail shape (camelCase), so a request can be replayed as an event."""
        data: dict[str, Any] = {
            "clusterId": self.cluster_id,
            "clusterManagerAccountId": self.cluster_manager_account_id,
            "s3AccountId": self.s3_account_id,
            "buckets": list(self.buckets),
        }
        if self.external_id is not None:
            data["externalId"] = self.external_id
        if self.requested_fingerprint is not None:
            data[REQUESTED_FIELD] = {"fingerprint": self.requested_fingerprint, "secretCreated": self.requested_created}
        data.update(
            nodeRoleName=self.node_role_name,
            accessRoleName=self.access_role_name,
            assumePolicyName=self.assume_policy_name,
            accessPolicyName=self.access_policy_name,
        )
        if self.node_api is not None:
            data["nodeApi"] = self.node_api.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: object) -> ClusterRequest:
        """Inverse of `to_dict`; validates again because step inputs cross a trust boundary."""
        if not isinstance(data, dict):
            raise InvalidEvent("request", "must be a JSON object")
        problems: Problems = []
        request = _parse_detail(data, "request", None, problems, internal=True)
        if request is None:
            _raise(problems, {"request": data})
        return request


def parse_event(event: object, defaults: Defaults, expected_detail_type: str = "Cluster Registered") -> ClusterRequest:
    """Accept a whole EventBridge event or just its detail; report every problem at once."""
    problems: Problems = []
    detail, roots = _envelope(event, expected_detail_type, problems)
    # Only the workflow itself (a bulk row's onboarding) hands on a staged ID's fingerprint.
    internal = isinstance(event, dict) and "detail" not in event
    request = _parse_detail(detail, "detail", defaults, problems, internal=internal)
    if request is None or problems:
        _raise(problems, roots)
    return request


def event_sender(event: object) -> str | None:
    """The account EventBridge says put a whole event on the bus; None for a bare detail.

    EventBridge sets `account` itself: a sender cannot choose it, unlike the detail.
    """
    if isinstance(event, dict) and "detail" in event and isinstance(event.get("account"), str):
        return str(event["account"])
    return None


ROTATION_PHASES = ("start", "finish")
_ROTATION_FIELDS = frozenset({"clusterId", "clusterManagerAccountId", "s3AccountId", "phase"})


def parse_rotation(event: object, defaults: Defaults) -> tuple[ClusterRequest, str]:
    """A `Rotate External ID` event (or its detail): the cluster, its two accounts and the phase."""
    problems: Problems = []
    detail, roots = _envelope(event, "Rotate External ID", problems)
    phase = detail.get("phase")
    if phase is None:
        problems.append(("detail.phase", "required"))
    elif phase not in ROTATION_PHASES:
        problems.append(("detail.phase", "must be 'start' or 'finish'"))
    for key in detail:
        if key not in _ROTATION_FIELDS:
            problems.append((f"detail.{key}", "unknown field"))
    named = {k: v for k, v in detail.items() if k in _ROTATION_FIELDS - {"phase"}}
    request = _parse_detail(named, "detail", defaults, problems)
    if request is None or problems:
        _raise(problems, roots)
    return request, str(phase)


def _envelope(event: object, expected_detail_type: str, problems: Problems) -> tuple[dict[str, Any], dict[str, object]]:
    """(the detail, the roots error paths start from); envelope problems are appended."""
    if not isinstance(event, dict):
        raise InvalidEvent("event", "must be a JSON object")
    detail: object = event
    if "detail" in event:
        for key in event:
            if key not in ENVELOPE_FIELDS:
                problems.append((f"event.{key}", "unknown field"))
        detail_type = event.get("detail-type")
        if detail_type is None:
            problems.append(("event.detail-type", "required"))
        elif detail_type != expected_detail_type:
            problems.append(("event.detail-type", f"must be {expected_detail_type!r}"))
        if "account" in event and not is_valid_account_id(event["account"]):
            problems.append(("event.account", "must be 12 digits (the account EventBridge says sent the event)"))
        detail = event["detail"]
    roots = {"event": event, "detail": detail}
    if not isinstance(detail, dict):
        problems.append(("detail", "must be a JSON object"))
        _raise(problems, roots)
    return detail, roots


def _raise(problems: Problems, roots: Mapping[str, object]) -> NoReturn:
    """One InvalidEvent listing all problems; `field`/`value` describe the first."""
    field, rule = problems[0]
    # An unknown field may be a misspelt externalId: never echo its value.
    value = None if rule == "unknown field" else _short(_value_at(roots, field))
    raise InvalidEvent(field, rule, value, problems=problems)


def _value_at(roots: Mapping[str, object], path: str) -> object:
    """The offending value for a path like `detail.buckets[1]`, for the error record."""
    head, _, rest = path.partition(".")
    node: object = roots.get(head)
    if not rest:
        return node
    match = re.fullmatch(r"(.*?)(?:\[(\d+)\])?", rest)
    key, index = (match.group(1), match.group(2)) if match else (rest, None)
    node = node.get(key) if isinstance(node, dict) else None
    if index is not None:
        node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
    return node


def _short(value: object) -> object:
    """Scalars only, truncated: containers could hold secrets and bloat the error cause."""
    if isinstance(value, str) and len(value) > 100:
        return value[:100] + "..."
    if isinstance(value, (dict, list)):
        return f"<{type(value).__name__} of {len(value)}>"
    return value


def _parse_detail(
    detail: dict[str, Any], prefix: str, defaults: Defaults | None, problems: Problems, *, internal: bool = False
) -> ClusterRequest | None:
    """Validate fields in table order; unknown fields last. None when anything failed.

    `internal`: the input comes from the workflow (a step's request, a bulk row's onboarding),
    which may carry a staged ID's fingerprint (`requestedExternalId`) instead of the ID.
    """
    start = len(problems)
    cluster_id = _required(detail, prefix, "clusterId", _check_cluster_id, problems)
    cm_account = _required(detail, prefix, "clusterManagerAccountId", _check_account, problems)
    s3_account = _required(detail, prefix, "s3AccountId", _check_account, problems)
    buckets = _buckets(detail.get("buckets"), f"{prefix}.buckets", problems)
    external_id = _optional(detail, prefix, "externalId", _check_external_id, problems)
    names: dict[str, str | None] = {}
    for key, check, attr in (
        ("nodeRoleName", _check_role_name, "node_role_name"),
        ("accessRoleName", _check_role_name, "access_role_name"),
        ("assumePolicyName", _check_policy_name, "assume_policy_name"),
        ("accessPolicyName", _check_policy_name, "access_policy_name"),
    ):
        if defaults is None:
            names[attr] = _required(detail, prefix, key, check, problems)
        else:
            given = _optional(detail, prefix, key, check, problems)
            names[attr] = given if given is not None else getattr(defaults, attr)
    requested = _requested(detail, prefix, internal, external_id, problems)
    node_api = parse_node_api(detail.get("nodeApi"), f"{prefix}.nodeApi", problems)
    for key in detail:
        if key not in _DETAIL_FIELDS and key != REQUESTED_FIELD:
            problems.append((f"{prefix}.{key}", "unknown field"))
    if len(problems) > start:
        return None
    return ClusterRequest(
        cluster_id=str(cluster_id),
        cluster_manager_account_id=str(cm_account),
        s3_account_id=str(s3_account),
        buckets=buckets,
        external_id=external_id,
        node_role_name=str(names["node_role_name"]),
        access_role_name=str(names["access_role_name"]),
        assume_policy_name=str(names["assume_policy_name"]),
        access_policy_name=str(names["access_policy_name"]),
        requested_fingerprint=requested[0] if requested else None,
        requested_created=requested[1] if requested else False,
        node_api=node_api,
    )


#: Where a staged ID's fingerprint travels instead of the ID (see ClusterRequest).
REQUESTED_FIELD = "requestedExternalId"
_KEYED_FINGERPRINT_RE = re.compile(r"redacted:hmac:[0-9a-f]{32}")


def _requested(
    detail: dict[str, Any], prefix: str, internal: bool, external_id: str | None, problems: Problems
) -> tuple[str, bool] | None:
    value = detail.get(REQUESTED_FIELD)
    if value is None:
        return None
    path = f"{prefix}.{REQUESTED_FIELD}"
    if not internal:
        problems.append((path, "set by the workflow itself, never by an event"))
        return None
    if external_id is not None:
        problems.append((path, "not together with externalId"))
        return None
    fingerprint = value.get("fingerprint") if isinstance(value, dict) else None
    created = value.get("secretCreated", False) if isinstance(value, dict) else None
    if (
        not isinstance(fingerprint, str)
        or _KEYED_FINGERPRINT_RE.fullmatch(fingerprint) is None
        or not isinstance(created, bool)
    ):
        problems.append((path, "must be {fingerprint: a keyed fingerprint, secretCreated: true|false}"))
        return None
    return fingerprint, created


def _required(detail: dict[str, Any], prefix: str, key: str, check: Check, problems: Problems) -> str | None:
    if detail.get(key) is None:
        problems.append((f"{prefix}.{key}", "required"))
        return None
    return _optional(detail, prefix, key, check, problems)


def _optional(detail: dict[str, Any], prefix: str, key: str, check: Check, problems: Problems) -> str | None:
    """JSON null counts as absent, so templates that emit null for unset fields still work."""
    value = detail.get(key)
    if value is None:
        return None
    rule = check(value)
    if rule is not None:
        problems.append((f"{prefix}.{key}", rule))
        return None
    return str(value)


def _check_cluster_id(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if _CLUSTER_ID_RE.fullmatch(value) is None:
        return "must be 1-64 characters of A-Z a-z 0-9 . _ -"
    return None


def _check_account(value: object) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "must be a string of 12 digits, not a number (quote it, leading zeros matter)"
    if not is_valid_account_id(value):
        return "must be 12 digits"
    return None


def _check_external_id(value: object) -> str | None:
    # The value is a secret: rules only, never the value itself.
    if not is_valid_external_id(value):
        return "must be a string of 2-1224 characters of A-Z a-z 0-9 + = , . @ : / -"
    return None


def _check_role_name(value: object) -> str | None:
    if not isinstance(value, str) or _ROLE_NAME_RE.fullmatch(value) is None:
        return "must be an IAM role name: 1-64 characters of A-Z a-z 0-9 _ + = , . @ -"
    return None


def _check_policy_name(value: object) -> str | None:
    if not isinstance(value, str) or _POLICY_NAME_RE.fullmatch(value) is None:
        return "must be an IAM policy name: 1-128 characters of A-Z a-z 0-9 _ + = , . @ -"
    return None


def bucket_name_problem(name: object) -> str | None:
    """First S3 general-purpose bucket naming rule `name` breaks, or None when valid."""
    if not isinstance(name, str):
        return "must be a string"
    if not 3 <= len(name) <= 63:
        return "must be 3-63 characters"
    if _BUCKET_CHARS_RE.fullmatch(name) is None:
        return "must contain only lowercase letters, digits, dots and hyphens"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "must begin and end with a letter or digit"
    if ".." in name:
        return "must not contain two adjacent dots"
    if _IP_RE.fullmatch(name):
        return "must not be formatted as an IP address"
    for prefix in _BUCKET_PREFIXES:
        if name.startswith(prefix):
            return f"must not start with the reserved prefix {prefix!r}"
    for suffix in _BUCKET_SUFFIXES:
        if name.endswith(suffix):
            return f"must not end with the reserved suffix {suffix!r}"
    return None


#: Buckets one event may name: Preflight reads each one's policy and encryption (2 to 4
#: calls) and every bucket adds its verdicts to the execution's state (256 KiB).
MAX_BUCKETS = 25


def _buckets(value: object, path: str, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append((path, "must be a list of S3 bucket names"))
        return ()
    if len(value) > MAX_BUCKETS:
        problems.append((path, f"at most {MAX_BUCKETS} buckets per event (MAX_BUCKETS), got {len(value)}"))
        return ()
    seen: dict[str, int] = {}
    for index, name in enumerate(value):
        rule = bucket_name_problem(name)
        if rule is None and name in seen:
            rule = f"duplicate of {path}[{seen[name]}]"
        if rule is not None:
            problems.append((f"{path}[{index}]", rule))
        else:
            seen[name] = index
    return tuple(value)
