"""Keep external IDs out of execution output, events, logs and traces.

Change records need trust policies before/after (for compensation and audit), but a
trust policy holds every cluster's external ID. Records carry a fingerprint instead:
equal IDs give equal fingerprints, so documents still compare, and nothing is revealed.

Fingerprints are keyed (HMAC-SHA256 with a key the deployment keeps in Secrets Manager,
`Fingerprints`): an operator-chosen, guessable ID cannot be recovered from the registry,
an execution's history or an output by hashing candidates. Records written before the key
existed carry unkeyed SHA-256 fingerprints (`redacted:sha256:`); they stay readable —
`Fingerprints.matches` accepts both — and the next write records the keyed form.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXTERNAL_ID_KEY = "sts:externalid"
#: Unkeyed fingerprints of records written before the key (read, never written).
REDACTED_PREFIX = "redacted:sha256:"
REDACTED_CASELESS_PREFIX = "redacted:sha256i:"
#: Keyed fingerprints: what every record carries now.
KEYED_PREFIX = "redacted:hmac:"
KEYED_CASELESS_PREFIX = "redacted:hmaci:"
_PREFIXES = (KEYED_PREFIX, KEYED_CASELESS_PREFIX, REDACTED_PREFIX, REDACTED_CASELESS_PREFIX)
#: Hex digits kept: 128 bits, far past any collision among a deployment's IDs.
_DIGITS = 32

Change = Callable[[str, object], object]


def legacy_fingerprint(external_id: str) -> str:
    """The unkeyed fingerprint records carried before the key existed (reading them only)."""
    return REDACTED_PREFIX + hashlib.sha256(external_id.encode()).hexdigest()[:16]


def is_fingerprint(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_PREFIXES)


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints under the deployment's key; `repr` never shows the key."""

    key: bytes = field(repr=False)

    def of(self, external_id: str) -> str:
        return KEYED_PREFIX + self._mac(external_id)

    def caseless(self, external_id: str) -> str:
        """The fingerprint under an `…IgnoreCase` operator: equal for IDs equal but for case."""
        return KEYED_CASELESS_PREFIX + self._mac(external_id.lower())

    def _mac(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()[:_DIGITS]

    def matches(self, recorded: object, external_id: str) -> bool:
        """Is `recorded` (keyed, or a legacy unkeyed record) the fingerprint of `external_id`?"""
        if not isinstance(recorded, str):
            return False
        if recorded.startswith(KEYED_PREFIX):
            return hmac.compare_digest(recorded, self.of(external_id))
        return recorded == legacy_fingerprint(external_id)

    def any_matches(self, recorded: object, external_ids: list[str] | set[str] | tuple[str, ...]) -> bool:
        return any(self.matches(recorded, i) for i in external_ids)

    def redact(self, doc: Any) -> Any:
        """A deep copy of the policy with every external ID in a condition fingerprinted."""
        return _map_external_id_values(doc, self._hide)

    def _hide(self, operator: str, value: object) -> object:
        if not _redacts(operator, value):
            return value
        if "ignorecase" in operator.lower():
            return self.caseless(str(value))
        return self.of(str(value))

    def reveal(self, redacted: Any, external_id: str) -> Any:
        """`redacted` with `external_id`'s fingerprints turned back into the ID itself.

        Evaluating the result for `external_id` gives exactly the answer the unredacted
        document gives: the other IDs stay fingerprints, which equal neither this ID nor a
        pattern it could match, and `Null` flags and wildcard patterns were never redacted.
        """
        known = {self.of(external_id): external_id, self.caseless(external_id): external_id}
        return _map_external_id_values(redacted, lambda _op, v: known.get(v, v) if isinstance(v, str) else v)

    def unredact(self, redacted: Any, source: dict[str, Any], extra: list[str] | tuple[str, ...] = ()) -> Any:
        """Put real external IDs back into `redacted`, taking them from `source` by fingerprint.

        Compensation restores a trust policy from its redacted `before`: every ID it held is
        still in the current document, or in `extra` (an ID the write withdrew, which the
        caller knows), so the fingerprints resolve. Raises KeyError when one does not.
        """
        values = [*_external_ids(source), *extra]
        known = {self.caseless(v): v for v in values} | {self.of(v): v for v in values}

        def restore(_op: str, value: object) -> object:
            if isinstance(value, str) and is_fingerprint(value):
                return known[value]
            return value

        return _map_external_id_values(redacted, restore)


#: What a document shown to a person has in place of each external ID (`masked`).
MASK = "<external ID>"


def masked(doc: Any) -> Any:
    """The policy for a person's eyes: every external ID replaced by `MASK` (no key, no hash).

    Fingerprints compare documents; a display needs none, and a mask cannot be turned back
    into a guessable ID by hashing candidates.
    """
    return _map_external_id_values(doc, lambda operator, value: MASK if _redacts(operator, value) else value)


def _redacts(operator: str, value: object) -> bool:
    """Which condition values hide an ID: not `Null` flags, not wildcard patterns.

    External IDs cannot contain `*` or `?`, so a pattern is never somebody's ID; keeping
    patterns and `Null` lets a redacted document be evaluated exactly (see `reveal`).
    """
    if operator.lower().split(":")[-1].startswith("null"):
        return False
    return not (isinstance(value, str) and ("*" in value or "?" in value))


def _map_external_id_values(doc: Any, change: Change) -> Any:
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
