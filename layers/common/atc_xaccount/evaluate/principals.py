"""Who makes a request, and which `Principal`/`NotPrincipal` entries name it (pure).

A role never acts itself: its requests are signed by an *assumed-role session*,
`arn:<p>:sts::<account>:assumed-role/<role name>/<session name>`. AWS matches such a
request against three principals: the account, the role and the session. A `Principal`
naming any of them applies (the account only where the policy delegates to IAM); a Deny
with `NotPrincipal` spares the session only if it lists all three, the session by its exact
ARN (no wildcard can stand for "every session"), and never spares a principal that has a
permissions boundary (IAM User Guide, "AWS JSON policy elements: NotPrincipal").
The session name is often not known here (Cluster Manager's, an EC2 instance's): a
`NotPrincipal` that lists sessions of the role then depends on it, which is undecidable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atc_xaccount.arns import is_valid_account_id, split_arn
from atc_xaccount.documents import as_list
from atc_xaccount.evaluate.conditions import Tri, Undecidable


@dataclass(frozen=True)
class Who:
    """The principal of a request.

    `arn` is the identity: a role's, a user's or an account root's ARN (a session ARN given
    here is read as its role and session). For a role, `session` is the session's name,
    None when unknown; `unique_id` is the role's `AROA…` ID (what IAM stores for a deleted
    role's ARN); `boundary` says whether the principal has a permissions boundary.
    """

    arn: str
    unique_id: str | None = None
    session: str | None = None
    boundary: bool = False

    def __post_init__(self) -> None:
        partition, service, _, account, resource = split_arn(self.arn)
        if service == "sts" and resource.startswith("assumed-role/"):
            parts = resource.split("/")
            if len(parts) != 3 or not all(parts):
                raise ValueError(f"not an assumed-role session ARN: {self.arn!r}")
            object.__setattr__(self, "arn", f"arn:{partition}:iam::{account}:role/{parts[1]}")
            object.__setattr__(self, "session", parts[2])

    @property
    def partition(self) -> str:
        return split_arn(self.arn)[0]

    @property
    def account(self) -> str:
        return split_arn(self.arn)[3]

    @property
    def is_role(self) -> bool:
        return split_arn(self.arn)[4].startswith("role/")

    @property
    def is_root(self) -> bool:
        return split_arn(self.arn)[4] == "root"

    @property
    def role_name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def session_arn(self) -> str | None:
        """The ARN that signs the request: the session's for a role (None if its name is unknown)."""
        if not self.is_role:
            return self.arn
        if self.session is None:
            return None
        return f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.role_name}/{self.session}"

    def by_account(self, entry: object) -> bool:
        """A bare account ID or `arn:<p>:iam::<account>:root` of the principal's own account."""
        if not isinstance(entry, str):
            return False
        if is_valid_account_id(entry):
            return entry == self.account
        return entry == f"arn:{self.partition}:iam::{self.account}:root"

    def by_identity(self, entry: object) -> bool:
        """The role or user itself: its ARN, or the unique ID IAM stores for it."""
        return isinstance(entry, str) and (entry == self.arn or (bool(self.unique_id) and entry == self.unique_id))

    def by_session(self, entry: object) -> Tri:
        """An assumed-role ARN of this role: the session's own (None when the session's name is unknown)."""
        if not isinstance(entry, str) or not self.is_role:
            return False
        prefix = f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.role_name}/"
        if not entry.startswith(prefix):
            return False
        return None if self.session is None else entry == self.session_arn


def aws_entries(block: object) -> list[Any] | None:
    """The AWS principals of a Principal block; None for `*` (every principal)."""
    if block == "*":
        return None
    if isinstance(block, dict):
        return as_list(block.get("AWS"))
    raise Undecidable("Principal is neither '*' nor an object")


def _any(values: list[Tri]) -> Tri:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def principal_names(entries: list[Any] | None, who: Who, *, account_counts: bool) -> Tri:
    """Does a `Principal` block name `who`: `*`, its account (if it counts), its identity or its session?"""
    if entries is None:
        return True
    return _any(
        [e == "*" or who.by_identity(e) or (account_counts and who.by_account(e)) or who.by_session(e) for e in entries]
    )


def not_principal_applies(entries: list[Any] | None, who: Who, *, deny: bool) -> Tri:
    """Does a statement with this `NotPrincipal` apply to `who`: is `who` *not* spared by the list?"""
    if entries is None or "*" in entries:
        return False
    if deny and who.boundary:
        return True  # IAM: a NotPrincipal Deny always denies a principal with a permissions boundary
    levels: list[Tri] = [any(who.by_account(e) for e in entries)]
    if not who.is_root:
        levels.append(any(who.by_identity(e) for e in entries))
    if who.is_role:
        levels.append(_any([who.by_session(e) for e in entries]))
    if any(level is False for level in levels):
        return True
    return None if any(level is None for level in levels) else False
