"""Who may ask (DESIGN 8): the sender is the subject, and only listed account pairs are connected.

Pure. EventBridge sets a whole event's `account` to the account that put it (the sender
cannot choose it) while `detail` is whatever the sender wrote, so a cluster manager
account may only speak for itself. Which cluster manager account may be given access to
which S3 account is the deployment's decision: the template parameter
`AllowedAccountPairs` (`CM:S3`, or `CM:*` for any S3 account), read here from the
functions' environment. An empty list admits nothing (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from atc_xaccount.errors import RequestNotAuthorized

PARAMETER = "AllowedAccountPairs"
ENVIRONMENT = "ALLOWED_ACCOUNT_PAIRS"
ANY_S3_ACCOUNT = "*"
_PAIR_RE = re.compile(r"(\d{12}):(\d{12}|\*)")


class PairsMisconfigured(ValueError):
    """`AllowedAccountPairs` holds an entry that is no pair (a deployment error, named)."""


@dataclass(frozen=True)
class AccountPairs:
    """The cluster manager -> S3 account pairs a deployment may connect."""

    pairs: frozenset[tuple[str, str]]

    @classmethod
    def parse(cls, entries: str | Iterable[str]) -> AccountPairs:
        """`CM:S3` / `CM:*` entries, comma-separated or as a list; blanks are skipped."""
        values = entries.split(",") if isinstance(entries, str) else list(entries)
        found: set[tuple[str, str]] = set()
        for raw in values:
            entry = raw.strip()
            if not entry:
                continue
            match = _PAIR_RE.fullmatch(entry)
            if match is None:
                raise PairsMisconfigured(
                    f"{PARAMETER} entry {entry!r} is not CM:S3 (two 12-digit account ids) or CM:* (any S3 account)"
                )
            found.add((match.group(1), match.group(2)))
        return cls(frozenset(found))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AccountPairs:
        return cls.parse(environ.get(ENVIRONMENT, ""))

    def admits(self, cluster_manager_account: str, s3_account: str) -> bool:
        return (cluster_manager_account, s3_account) in self.pairs or (
            cluster_manager_account,
            ANY_S3_ACCOUNT,
        ) in self.pairs

    def __str__(self) -> str:
        return ",".join(f"{cm}:{s3}" for cm, s3 in sorted(self.pairs)) or "(empty)"


def authorize_sender(sender: str | None, cluster_manager_account: str) -> None:
    """A whole event speaks only for the account that put it on the bus."""
    if sender is None or sender == cluster_manager_account:
        return
    raise RequestNotAuthorized(
        f"the event was sent by account {sender} but names cluster manager account {cluster_manager_account} "
        "(event.account must equal detail.clusterManagerAccountId)",
        fix=f"send it from account {cluster_manager_account}, whose clusters it describes",
        account=sender,
        sender=sender,
        clusterManagerAccountId=cluster_manager_account,
    )


def authorize_pair(pairs: AccountPairs, cluster_manager_account: str, s3_account: str, what: str = "request") -> None:
    """Refuse a pair the deployment does not connect, saying what to set."""
    if pairs.admits(cluster_manager_account, s3_account):
        return
    pair = f"{cluster_manager_account}:{s3_account}"
    if not pairs.pairs:
        listed = f"{PARAMETER} is empty, which admits no pair"
    else:
        listed = f"{PARAMETER} ({pairs}) does not list it"
    raise RequestNotAuthorized(
        f"the {what} connects cluster manager account {cluster_manager_account} to S3 account {s3_account}, "
        f"and {listed}",
        fix=f"add {pair} (or {cluster_manager_account}:*) to the stack parameter {PARAMETER} if this pair is meant "
        "to be connected",
        account=cluster_manager_account,
        pair=pair,
        parameter=PARAMETER,
    )
