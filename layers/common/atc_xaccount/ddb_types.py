"""DynamoDB's attribute-value format, both ways, without importing boto3.

boto3's `TypeSerializer`/`TypeDeserializer` pull in all of boto3 (and s3transfer) on a
Lambda cold start; the registry needs only this small mapping. Same rules as boto3's:
ints and Decimals are numbers, floats are refused, sets must be non-empty and of one kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal
from typing import Any


def serialize(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    if isinstance(value, (int, Decimal)):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Set):
        return _set(value)
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [serialize(v) for v in value]}
    raise TypeError(f"Unsupported type {type(value)!r} for value {value!r}")


def _number(value: int | Decimal) -> str:
    number = str(Decimal(value))
    if number in ("Infinity", "-Infinity", "NaN", "sNaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


def _set(values: Set[Any]) -> dict[str, Any]:
    if not values:
        raise TypeError("DynamoDB sets may not be empty")
    if all(isinstance(v, str) for v in values):
        return {"SS": list(values)}
    if all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in values):
        return {"NS": [_number(v) for v in values]}
    if all(isinstance(v, (bytes, bytearray)) for v in values):
        return {"BS": [bytes(v) for v in values]}
    raise TypeError(f"a DynamoDB set holds one kind of value: {values!r}")


def deserialize(attribute: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value as Python (numbers as Decimal, as boto3 gives them)."""
    if len(attribute) != 1:
        raise TypeError(f"not a DynamoDB attribute value: {attribute!r}")
    kind, value = next(iter(attribute.items()))
    if kind == "NULL":
        return None
    if kind in ("S", "BOOL", "B"):
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "SS" or kind == "BS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "L":
        return [deserialize(v) for v in value]
    if kind == "M":
        return {k: deserialize(v) for k, v in value.items()}
    raise TypeError(f"unknown DynamoDB type {kind!r}")
