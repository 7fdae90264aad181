"""The project's one IAM evaluator: allowed / denied / implicit / undecidable, with the deciding statements.

moto does not evaluate trust, bucket or key policies and there is no policy simulator
locally, so every judgement the product makes about access comes from here: the trust
check and Verify (`evaluate_trust`, `evaluate_identity`), the never-widen guard
(`widening`), the access chain the doctor and Preflight judge (`chain`, through
`judge_*`), and the emulator's own enforcement. Differential tests hold it to an
independently written simulator (`tests/differential/`, `docs/evaluator.md`).

By concern: `conditions` (values, actions, resources, Condition blocks), `principals`
(who a request is: account, role, session, and which Principal/NotPrincipal entries name
it), `judgement` (statements to a three-valued `Judgement`) and `decision` (the same
judgement as a yes/no `Decision` that fails towards deny).
"""

from __future__ import annotations

from atc_xaccount.evaluate.conditions import Context, glob_match
from atc_xaccount.evaluate.decision import Decision, evaluate_identity, evaluate_trust
from atc_xaccount.evaluate.judgement import (
    ABSENT_KEYS,
    ALLOWED,
    DENIED,
    IMPLICIT,
    UNDECIDABLE,
    Judgement,
    judge_identity,
    judge_resource_policy,
    judge_trust,
    within_boundary,
)
from atc_xaccount.evaluate.principals import Who

__all__ = [
    "ABSENT_KEYS",
    "ALLOWED",
    "DENIED",
    "IMPLICIT",
    "UNDECIDABLE",
    "Context",
    "Decision",
    "Judgement",
    "Who",
    "evaluate_identity",
    "evaluate_trust",
    "glob_match",
    "judge_identity",
    "judge_resource_policy",
    "judge_trust",
    "within_boundary",
]
