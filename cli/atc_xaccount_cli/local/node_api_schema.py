"""The Node API's own description of its requests, vendored: what the emulator and the tests check against.

`node_api_openapi.json` is an excerpt of IBM Aspera's Node API OpenAPI 4.4.6 (its source,
licence and what was changed are in its `x-vendored` block; the licence text is
`node_api_openapi.LICENSE`). A request is checked twice:

- against the schema itself (jsonschema, OpenAPI 3.0's schema objects read as draft 4);
- for fields the schema does not declare. The Node API's schemas leave
  `additionalProperties` open, so a misspelt `assume_role_externalid` would validate and
  a real node would silently ignore it: here it is a problem, named with its path.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

SCHEMA_FILE = Path(__file__).with_name("node_api_openapi.json")
REF_PREFIX = "#/components/schemas/"


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def definition(name: str) -> dict[str, Any]:
    """One component schema (`accessKeyRequest`, `filesBrowseRequest`, ...)."""
    found: dict[str, Any] = document()["components"]["schemas"][name]
    return found


def problems(instance: Any, name: str) -> list[str]:
    """Every way `instance` breaks the schema `name`, or uses a field it does not declare."""
    root = {"$ref": REF_PREFIX + name, "components": document()["components"]}
    found = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in Draft4Validator(root).iter_errors(instance)
    ]
    found += [f"{path}: not a field of {name}" for path in undeclared(instance, definition(name))]
    return sorted(set(found))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return definition(ref[len(REF_PREFIX) :]) if isinstance(ref, str) else schema


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """Declared properties, `allOf` branches merged (accessKeyStorageRequest is one)."""
    schema = _resolve(schema)
    merged = dict(schema.get("properties") or {})
    for branch in schema.get("allOf") or []:
        merged.update(_properties(branch))
    return merged


def undeclared(instance: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of object fields no schema on the way declares (items of arrays included)."""
    schema = _resolve(schema)
    found: list[str] = []
    if isinstance(instance, dict):
        declared = _properties(schema)
        if not declared and not schema.get("allOf"):
            return found  # a free-form object
        for key, value in instance.items():
            where = f"{path}.{key}" if path else key
            if key not in declared:
                found.append(where)
            else:
                found += undeclared(value, declared[key], where)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            found += undeclared(item, schema["items"], f"{path}[{index}]")
    return found
