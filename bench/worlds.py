"""Copies of the sample (world, event, recorded inputs) under other account IDs and names.

One emulator can then hold many independent onboardings: each copy has its own cluster
manager and S3 accounts, cluster ID and bucket names (bucket names are global in S3).
"""

from __future__ import annotations

import json
from typing import Any

SAMPLE_CM = "111111111111"
SAMPLE_S3 = "222222222222"


def names_of(event: dict[str, Any]) -> list[str]:
    """The event's names that must change between copies: cluster ID and buckets."""
    detail = event.get("detail", event)
    return [detail["clusterId"], *detail.get("buckets", [])]


def remap_text(text: str, prefix: int, index: int, names: list[str]) -> str:
    """Accounts become `<prefix>1<index>` / `<prefix>2<index>` (12 digits); names get a suffix."""
    cm, s3 = f"{prefix}1{index:09d}", f"{prefix}2{index:09d}"
    text = text.replace(SAMPLE_CM, cm).replace(SAMPLE_S3, s3)
    for name in names:
        text = text.replace(name, f"{name}-{prefix}x{index}")
    return text


def remap(obj: Any, prefix: int, index: int, names: list[str]) -> Any:
    return json.loads(remap_text(json.dumps(obj), prefix, index, names))


def unmap_text(text: str, prefix: int, index: int, names: list[str]) -> str:
    """The inverse of `remap_text`: a copy's accounts and names back to the sample's."""
    cm, s3 = f"{prefix}1{index:09d}", f"{prefix}2{index:09d}"
    for name in names:
        text = text.replace(f"{name}-{prefix}x{index}", name)
    return text.replace(cm, SAMPLE_CM).replace(s3, SAMPLE_S3)
