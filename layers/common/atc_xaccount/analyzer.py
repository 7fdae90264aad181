"""IAM Access Analyzer `ValidatePolicy` before each write: AWS's own policy grammar check.

ERROR and SECURITY_WARNING findings in statements this project owns stop the workflow
before writing; findings in foreign statements are reported, never fatal. Where the
service is not there (the embedded emulator: moto has no Access Analyzer) the result
says so instead of inventing an answer; the offline lint still runs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection
from typing import Any

from botocore.exceptions import ClientError

from atc_xaccount.aws_errors import error_code, translate
from atc_xaccount.documents import statements
from atc_xaccount.lint import Finding

AUTOMATION_ACCOUNT = "automation"
BLOCKING = frozenset({"ERROR", "SECURITY_WARNING"})
IDENTITY, TRUST = "IDENTITY_POLICY", "RESOURCE_POLICY"
TRUST_RESOURCE_TYPE = "AWS::IAM::AssumeRolePolicyDocument"
UNAVAILABLE = "unavailable: IAM Access Analyzer is not available here (offline lint only)"


def _unavailable(exc: ClientError) -> bool:
    """The service is absent here (moto answers 404 "Not yet implemented")."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) in {"404", "UnknownOperationException"} or (
        status == 404 and "not yet implemented" in str(exc).lower()
    )


def validate(
    client: Any, doc: dict[str, Any], policy_type: str, owned_sids: Collection[str]
) -> tuple[str, list[Finding]]:
    """("passed" | "findings" | "unavailable: ...", findings) for one document."""
    kwargs: dict[str, Any] = {"policyDocument": json.dumps(doc), "policyType": policy_type}
    if policy_type == TRUST:
        kwargs["validatePolicyResourceType"] = TRUST_RESOURCE_TYPE
    found: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("validate_policy").paginate(**kwargs):
            found.extend(page.get("findings", []))
    except ClientError as exc:
        if _unavailable(exc):
            return UNAVAILABLE, []
        raise translate(exc, "access-analyzer:ValidatePolicy", AUTOMATION_ACCOUNT) from exc
    sids = [s.get("Sid") for s in statements(doc)]
    findings = [_finding(f, sids, owned_sids) for f in found]
    return ("findings" if findings else "passed"), findings


def _finding(raw: dict[str, Any], sids: list[Any], owned_sids: Collection[str]) -> Finding:
    index = _statement_index(raw)
    sid = sids[index] if index is not None and index < len(sids) else None
    owned = sid in owned_sids if sid is not None else index is None
    blocking = raw.get("findingType") in BLOCKING and owned
    return Finding(
        code=f"ACCESS_ANALYZER_{raw.get('issueCode', 'UNKNOWN')}",
        severity="error" if blocking else "warning",
        message=f"{raw.get('findingType')}: {raw.get('findingDetails', '')}",
        sid=sid if isinstance(sid, str) else None,
        owned=owned,
    )


def _statement_index(raw: dict[str, Any]) -> int | None:
    """Which statement a finding points at (None: the document as a whole)."""
    for location in raw.get("locations", []):
        path = location.get("path", [])
        for first, second in itertools.pairwise(path):
            if first.get("value") == "Statement" and "index" in second:
                return int(second["index"])
    return None
