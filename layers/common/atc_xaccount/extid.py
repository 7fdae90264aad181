"""External IDs: the shared secret the operator types into the Cluster Manager UI."""

from __future__ import annotations

import re
import secrets
import string

MIN_GENERATED_LENGTH = 32
MAX_LENGTH = 1224
_ALPHABET = string.ascii_letters + string.digits
_VALID_RE = re.compile(r"[A-Za-z0-9+=,.@:/-]{2,1224}")


def generate_external_id(length: int = MIN_GENERATED_LENGTH) -> str:
    """Random letters and digits only: a subset of IAM's allowed set that survives copy-paste."""
    if length < MIN_GENERATED_LENGTH or length > MAX_LENGTH:
        raise ValueError(f"external ID length must be between {MIN_GENERATED_LENGTH} and {MAX_LENGTH}")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def is_valid_external_id(s: object) -> bool:
    """IAM's rule for sts:ExternalId: 2-1224 chars of [A-Za-z0-9+=,.@:/-]."""
    return isinstance(s, str) and _VALID_RE.fullmatch(s) is not None
