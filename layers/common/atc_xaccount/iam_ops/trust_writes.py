"""The trust policy write: the access role's trust replaced by the merged document.

The merge itself is pure (`trust.py`); this is the one call that writes it, with the
record's documents redacted with the deployment's keyed fingerprints (a trust policy holds every cluster's external ID).
"""

from __future__ import annotations

import json
from typing import Any

from atc_xaccount.aws_errors import JUST_CREATED_PRINCIPAL, retried
from atc_xaccount.documents import non_whitespace_size, same_document
from atc_xaccount.redact import Fingerprints


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


def write_trust_policy(
    iam: Any,
    account: str,
    *,
    role_name: str,
    before: dict[str, Any],
    after: dict[str, Any],
    fingerprints: Fingerprints,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Replace the role's trust policy with `after` (already merged) when it differs.

    The record's documents are redacted (`fingerprints`, the deployment's keyed ones): a
    trust policy holds every cluster's external ID.
    A principal created a moment ago is not valid yet ("Invalid principal in policy"):
    retried here with backoff, and by the ASL after that.
    """
    changed = not same_document(before, after)
    record = {
        "account": account,
        "roleName": role_name,
        "before": fingerprints.redact(before),
        "after": fingerprints.redact(after),
        "applied": not dry_run,
        "action": "updated" if changed else "unchanged",
        "size": non_whitespace_size(after),
    }
    if changed and not dry_run:
        retried(
            "iam:UpdateAssumeRolePolicy",
            account,
            lambda: iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=_dumps(after)),
            also=(JUST_CREATED_PRINCIPAL,),
        )
    return record
