"""The old name of the three-valued half of `atc_xaccount.evaluate`, kept for imports of it.

There is one evaluator, `atc_xaccount.evaluate`; this module only re-exports its names.
New code imports them from there.
"""

from __future__ import annotations

from atc_xaccount.evaluate import (
    ABSENT_KEYS,
    ALLOWED,
    DENIED,
    IMPLICIT,
    UNDECIDABLE,
    Judgement,
    Who,
    judge_identity,
    judge_resource_policy,
    judge_trust,
    within_boundary,
)

__all__ = [
    "ABSENT_KEYS",
    "ALLOWED",
    "DENIED",
    "IMPLICIT",
    "UNDECIDABLE",
    "Judgement",
    "Who",
    "judge_identity",
    "judge_resource_policy",
    "judge_trust",
    "within_boundary",
]
