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


REDACTED_CASELESS_PREFIX = "redacted:sha256i:"


def fingerprint(external_id: str) -> str:
    return REDACTED_PREFIX + hashlib.sha256(external_id.encode()).hexdigest()[:16]


def caseless_fingerprint(external_id: str) -> str:
    """The fingerprint under an `…IgnoreCase` operator: equal for IDs equal but for case."""
    return REDACTED_CASELESS_PREFIX + hashlib.sha256(external_id.lower().encode()).hexdigest()[:16]


def _redacts(operator: str, value: object) -> bool:
    """Which condition values hide an ID: not `Null` flags, not wildcard patterns.

    External IDs cannot contain `*` or `?`, so a pattern is never somebody's ID; keeping
    patterns and `Null` lets a redacted document be evaluated exactly (see `reveal`).
    """
    if operator.lower().split(":")[-1].startswith("null"):
        return False
    return not (isinstance(value, str) and ("*" in value or "?" in value))


def _hide(operator: str, value: object) -> object:
    if not _redacts(operator, value):
        return value
    if "ignorecase" in operator.lower():
        return caseless_fingerprint(str(value))
    return fingerprint(str(value))


def _map_external_id_values(doc: Any, change: Any) -> Any:
    """A deep copy with `change(operator, value)` applied to every sts:ExternalId value."""
    result = copy.deepcopy(doc)
    for statement in _statements(result):
        conditions = statement.get("Condition")
        for operator, operator_values in (conditions if isinstance(conditions, dict) else {}).items():
            if not isinstance(operator_values, dict):
                continue
            for key, value in operator_values.items():
                if key.lower() == EXTERNAL_ID_KEY:
                    operator_values[key] = (
                        [change(operator, v) for v in value] if isinstance(value, list) else change(operator, value)
                    )
    return result


def redact_external_ids(doc: Any) -> Any:
    """A deep copy of the policy with every external ID in a condition fingerprinted."""
    return _map_external_id_values(doc, _hide)


def reveal(redacted: Any, external_id: str) -> Any:
    """`redacted` with `external_id`'s fingerprints turned back into the ID itself.

    Evaluating the result for `external_id` gives exactly the answer the unredacted
    document gives: the other IDs stay fingerprints, which equal neither this ID nor a
    pattern it could match, and `Null` flags and wildcard patterns were never redacted.
    """
    known = {fingerprint(external_id): external_id, caseless_fingerprint(external_id): external_id}
    return _map_external_id_values(redacted, lambda _op, v: known.get(v, v) if isinstance(v, str) else v)


def unredact(redacted: Any, source: dict[str, Any], extra: list[str] | tuple[str, ...] = ()) -> Any:
    """Put real external IDs back into `redacted`, taking them from `source` by fingerprint.

    Compensation restores a trust policy from its redacted `before`: every ID it held is
    still in the current document, or in `extra` (an ID the write withdrew, which the
    caller knows), so the fingerprints resolve. Raises KeyError when one does not.
    """
    values = [*_external_ids(source), *extra]
    known = {caseless_fingerprint(v): v for v in values} | {fingerprint(v): v for v in values}
    restored = copy.deepcopy(redacted)
    for statement in _statements(restored):
        for operator_values in (statement.get("Condition") or {}).values():
            if not isinstance(operator_values, dict):
                continue
            for key, value in operator_values.items():
                if key.lower() == EXTERNAL_ID_KEY:
                    operator_values[key] = (
                        [_known(known, v) for v in value] if isinstance(value, list) else _known(known, value)
                    )
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


def _known(known: dict[str, str], value: Any) -> Any:
    """The ID behind a fingerprint; values that were never redacted come back as they are."""
    if isinstance(value, str) and value.startswith((REDACTED_PREFIX, REDACTED_CASELESS_PREFIX)):
        return known[value]
    return value
