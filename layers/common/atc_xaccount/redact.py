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


def unredact(redacted: Any, source: dict[str, Any], extra: list[str] | tuple[str, ...] = ()) -> Any:
    """Put real external IDs back into `redacted`, taking them from `source` by fingerprint.

    Compensation restores a trust policy from its redacted `before`: every ID it held is
    still in the current document, or in `extra` (an ID the write withdrew, which the
    caller knows), so the fingerprints resolve. Raises KeyError when one does not.
    """
    known = {fingerprint(v): v for v in [*_external_ids(source), *extra]}
    restored = copy.deepcopy(redacted)
    for statement in _statements(restored):
        for operator_values in (statement.get("Condition") or {}).values():
            if not isinstance(operator_values, dict):
                continue
            for key, value in operator_values.items():
                if key.lower() == EXTERNAL_ID_KEY:
                    operator_values[key] = [known[v] for v in value] if isinstance(value, list) else known[value]
    return restored


def _statements(doc: Any) -> list[dict[str, Any]]:
    statements = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [s for s in (statements if isinstance(statements, list) else [statements]) if isinstance(s, dict)]


def _external_ids(doc: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in _statements(doc):
        for operator_values in (statement.get("Condition") or {}).values():
            if isinstance(operator_values, dict):
                for key, value in operator_values.items():
                    if key.lower() == EXTERNAL_ID_KEY:
                        found.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return found
