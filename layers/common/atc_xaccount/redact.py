"""Keep external IDs out of execution output, events, logs and traces.

Change records need trust policies before/after (for compensation and audit), but a
trust policy holds every cluster's external ID. Records carry a fingerprint instead:
equal IDs give equal fingerprints, so documents still compare, and nothing is revealed.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

REDACTED_PREFIX = "redacted:sha256:"
EXTERNAL_ID_KEY = "sts:externalid"


def fingerprint(external_id: str) -> str:
    return REDACTED_PREFIX + hashlib.sha256(external_id.encode()).hexdigest()[:16]


def redact_external_ids(doc: Any) -> Any:
    """A deep copy of the policy with every `sts:ExternalId` condition value fingerprinted."""
    redacted = copy.deepcopy(doc)
    statements = redacted.get("Statement", []) if isinstance(redacted, dict) else []
    for statement in statements if isinstance(statements, list) else [statements]:
        conditions = statement.get("Condition") if isinstance(statement, dict) else None
        for operator_values in (conditions or {}).values():
            if not isinstance(operator_values, dict):
                continue
            for key, value in operator_values.items():
                if key.lower() == EXTERNAL_ID_KEY:
                    operator_values[key] = (
                        [fingerprint(str(v)) for v in value] if isinstance(value, list) else fingerprint(str(value))
                    )
    return redacted
