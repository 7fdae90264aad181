"""Which AWS calls change state (the call counts' `writes`): a pure rule, importable without moto."""

from __future__ import annotations

READ_PREFIXES = ("Get", "List", "Describe", "Head", "Simulate", "Validate", "Lookup", "Search", "Scan", "Query")
READ_OPERATIONS = frozenset(
    {"sts:AssumeRole", "sts:GetCallerIdentity", "iam:GenerateServiceLastAccessedDetails", "nodeapi:Browse"}
)


def is_write(key: str) -> bool:
    """A call that changes state: anything but reads and STS credential exchange."""
    operation = key.partition(":")[2]
    return key not in READ_OPERATIONS and not operation.startswith(READ_PREFIXES)
