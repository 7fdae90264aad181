"""How many clusters one access role's trust policy can hold under a size quota.

Starts from the sample world's trust policy (EC2 statement + a partner grant) and adds
clusters with 32-character external IDs until the document, measured as IAM does
(`non_whitespace_size`), would exceed the quota. Two shapes of growth:

- one cluster manager account: all clusters' nodes share one `atc-node` role ARN;
- each cluster from its own account: one principal per cluster.

Ours merges with `merge_trust_grant` (one statement per principal, IDs listed in it). The
baseline appends the seed's statement once per cluster (the console procedure *replaces*
the policy, so literally it holds one cluster; appending is its best case).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.trust import merge_trust_grant
from bench.baseline_console import SEED_TRUST_POLICY
from bench.scaling import ID_LENGTH, external_ids

Grow = Callable[[dict[str, Any], str, str], dict[str, Any]]
CM_ACCOUNT = "111111111111"
LIMIT = 1000


def _ours(doc: dict[str, Any], principal: str, external_id: str) -> dict[str, Any]:
    return merge_trust_grant(doc, principal, external_id)[0]


def _baseline(doc: dict[str, Any], principal: str, external_id: str) -> dict[str, Any]:
    statement = json.loads(SEED_TRUST_POLICY)["Statement"][0]
    statement["Principal"]["AWS"] = principal
    statement["Condition"]["StringEquals"]["sts:ExternalId"] = external_id
    grown = copy.deepcopy(doc)
    grown["Statement"] = [*grown["Statement"], statement]
    return grown


def _principal(i: int, own_account: bool) -> str:
    account = f"{100000000000 + i}" if own_account else CM_ACCOUNT
    return f"arn:aws:iam::{account}:role/atc-node"


def capacity(start: dict[str, Any], quota: int, grow: Grow, *, own_account: bool) -> int:
    """Clusters that fit: the count before the first addition that exceeds `quota`."""
    doc = start
    ids = external_ids(LIMIT, seed=quota)
    for i in range(LIMIT):
        grown = grow(doc, _principal(i, own_account), ids[i])
        if non_whitespace_size(grown) > quota:
            return i
        doc = grown
    return LIMIT


def measure(start: dict[str, Any], quota: int) -> dict[str, Any]:
    return {
        "quota": quota,
        "external_id_chars": ID_LENGTH,
        "start_size": non_whitespace_size(start),
        "ours_one_cm_account": capacity(start, quota, _ours, own_account=False),
        "ours_own_account_each": capacity(start, quota, _ours, own_account=True),
        "baseline_append_one_cm_account": capacity(start, quota, _baseline, own_account=False),
        "baseline_append_own_account_each": capacity(start, quota, _baseline, own_account=True),
        "baseline_literal_replace": 1,
    }
