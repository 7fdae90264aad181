"""Our IAM evaluator held to an independently written one: @cloud-copilot/iam-simulate (npm, AGPL-3.0).

A few thousand generated requests (`differential_cases.py`) go through `atc_xaccount.evaluate`
and, in one node process for the whole module, through the simulator pinned in
`package-lock.json` (installed by `make test`'s `npm ci`; a test-time tool, never shipped).
Where the two differ, the difference must be one of the classes `docs/evaluator.md`
documents and explains, and proven to be that class: our evaluator, given the documents
rewritten as the simulator reads them, must then give the simulator's answer. Whatever
the class, we never say "allowed" where the simulator does not.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from differential_cases import Case, Rewrite, generate, unchanged

from atc_xaccount.evaluate import ALLOWED, Who
from atc_xaccount.evaluate.conditions import OPERATORS

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "evaluator.md"
SIMULATOR = HERE / "node_modules" / "@cloud-copilot" / "iam-simulate"
NODE = shutil.which("node")
OUTCOMES = {"Allowed": "allowed", "ExplicitlyDenied": "denied", "ImplicitlyDenied": "implicit"}

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the differential test runs the npm simulator (tests/differential)"
)

_SPELLED = {
    f"{prefix}{base}{suffix}".lower(): f"{prefix}{base}{suffix}"
    for prefix in ("", "ForAnyValue:", "ForAllValues:")
    for base in OPERATORS
    for suffix in ("", "IfExists")
} | {"null": "Null"}


def respelled(doc: dict[str, Any], who: Who | None, context: dict[str, Any]) -> dict[str, Any]:
    """Operators spelled as IAM spells them: how the simulator, which ignores their case, reads them."""
    out = json.loads(json.dumps(doc))
    for stmt in out.get("Statement", []):
        if "Condition" in stmt:
            stmt["Condition"] = {_SPELLED.get(op.lower(), op): block for op, block in stmt["Condition"].items()}
    return out


def not_principal_as_the_simulator_reads_it(doc: dict[str, Any], who: Who | None, context: dict[str, Any]) -> Any:
    """The simulator spares a principal when NotPrincipal names it at any level (account, role or session)."""
    out = json.loads(json.dumps(doc))
    for stmt in out.get("Statement", []):
        entries = (stmt.get("NotPrincipal") or {}).get("AWS") if isinstance(stmt.get("NotPrincipal"), dict) else None
        if who is None or entries is None:
            continue
        listed = entries if isinstance(entries, list) else [entries]
        if any(who.by_account(e) or who.by_identity(e) or who.by_session(e) for e in listed):
            stmt["NotPrincipal"] = {"AWS": [f"arn:aws:iam::{who.account}:root", who.arn, who.session_arn]}
    return out


def multivalued_as_the_simulator_reads_it(doc: dict[str, Any], who: Who | None, context: dict[str, Any]) -> Any:
    """The simulator fails a single-valued operator on a multivalued key, negated or not: `Null` false."""
    multivalued = {k.lower() for k, v in context.items() if isinstance(v, list)}
    out = json.loads(json.dumps(doc))
    for stmt in out.get("Statement", []):
        condition = stmt.get("Condition") or {}
        for operator in list(condition):
            if ":" in operator or operator.lower() == "null":
                continue
            for key in [k for k in condition[operator] if k.lower() in multivalued]:
                condition.setdefault("Null", {})[key] = "true"
                del condition[operator][key]
            if not condition[operator]:
                del condition[operator]
    return out


def _all(*rewrites: Rewrite) -> Rewrite:
    def rewrite(doc: dict[str, Any], who: Who | None, context: dict[str, Any]) -> dict[str, Any]:
        for step in rewrites:
            doc = step(doc, who, context)
        return doc

    return rewrite


#: The documented classes of difference (docs/evaluator.md): name -> (rewrite, keep IAM's boundary rule).
CLASSES: dict[str, tuple[Rewrite, bool]] = {
    "NotPrincipal": (not_principal_as_the_simulator_reads_it, False),
    "misspelt operator": (respelled, True),
    "multivalued key": (multivalued_as_the_simulator_reads_it, True),
}
_EVERY = _all(respelled, multivalued_as_the_simulator_reads_it, not_principal_as_the_simulator_reads_it)


def classify(case: Case, theirs: str) -> str | None:
    """The documented classes that explain a difference: rewritten as the simulator reads it, ours agrees.

    One class if its rewrite alone explains it; "several" if only all of them together do.
    """
    for name, (rewrite, boundary_rule) in CLASSES.items():
        if case.judge(rewrite, boundary_rule).outcome == theirs:
            return name
    return "several" if case.judge(_EVERY, False).outcome == theirs else None


@pytest.fixture(scope="module")
def judged() -> tuple[str, list[tuple[Case, str]]]:
    if not SIMULATOR.is_dir():
        pytest.fail("the simulator is not installed: run `make test` (it runs `npm ci` in tests/differential)")
    cases = generate()
    proc = subprocess.run(
        [str(NODE), str(HERE / "simulate.cjs")],
        input=json.dumps([c.simulation for c in cases]),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    errors = [(c.simulation, r["error"]) for c, r in zip(cases, answer["results"], strict=True) if "error" in r]
    assert not errors, f"the simulator refused {len(errors)} cases, e.g. {errors[0]}"
    return answer["version"], [(c, OUTCOMES[r["result"]]) for c, r in zip(cases, answer["results"], strict=True)]


def test_the_pinned_simulator_answers(judged):
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]["@cloud-copilot/iam-simulate"]
    version, results = judged
    assert version == pinned
    assert len(results) >= 3000
    assert set(Counter(theirs for _, theirs in results)) == {"allowed", "denied", "implicit"}


def test_never_allowed_where_the_simulator_does_not_allow(judged):
    _, results = judged
    false_ok = [(c.family, c.simulation, t) for c, t in results if c.ours.outcome == ALLOWED and t != "allowed"]
    assert not false_ok, false_ok[:3]


def test_every_difference_is_a_documented_class(judged):
    _, results = judged
    unexplained = [
        (c.family, c.ours.outcome, t, c.ours.reason, c.simulation)
        for c, t in results
        if c.ours.outcome != t and classify(c, t) is None
    ]
    assert not unexplained, f"{len(unexplained)} differences no documented class explains, e.g. {unexplained[:2]}"


def _figures(results: list[tuple[Case, str]]) -> str:
    """The table and the agreement figure docs/evaluator.md records."""
    by_family: dict[str, Counter[str]] = {}
    for case, theirs in results:
        tally = by_family.setdefault(case.family, Counter())
        tally["cases"] += 1
        tally["agree" if case.ours.outcome == theirs else classify(case, theirs) or "unexplained"] += 1
    columns = ["agree", *CLASSES, "several"]
    lines = [
        f"| family | cases | {' | '.join(columns)} |",
        f"| --- | ---: | {' | '.join('---:' for _ in columns)} |",
        *(
            f"| {family} | {tally['cases']:,} | {' | '.join(f'{tally[c]:,}' for c in columns)} |"
            for family, tally in by_family.items()
        ),
    ]
    agreed = sum(t["agree"] for t in by_family.values())
    total = sum(t["cases"] for t in by_family.values())
    lines.append(f"\n**{agreed:,} of {total:,} cases agree ({100 * agreed / total:.1f} %)**")
    return "\n".join(lines)


def test_the_agreement_figure_is_the_one_documented(judged):
    _, results = judged
    figures = _figures(results)
    documented = DOCS.read_text()
    table = re.search(r"<!-- differential:begin -->\n(.*?)\n<!-- differential:end -->", documented, re.S)
    assert table is not None, f"{DOCS} has no differential table"
    assert table.group(1).strip() == figures.strip(), f"update {DOCS.name} with:\n{figures}"
    for name in CLASSES:
        assert f"### {name}" in documented, f"class {name!r} is not explained in {DOCS.name}"


def test_the_rewrites_are_not_vacuous():
    """Each class's rewrite changes the verdict of its own example, so a class cannot hide an unrelated bug."""
    session = Who("arn:aws:sts::222222222222:assumed-role/r/s")
    np_doc = {"Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": session.arn}, "Action": "*"}]}
    assert not_principal_as_the_simulator_reads_it(np_doc, session, {})["Statement"][0]["NotPrincipal"]["AWS"] == [
        "arn:aws:iam::222222222222:root",
        session.arn,
        session.session_arn,
    ]
    spelt = respelled({"Statement": [{"Condition": {"stringlike": {"k": "v"}}}]}, None, {})
    assert spelt["Statement"][0]["Condition"] == {"StringLike": {"k": "v"}}
    multi = {"Statement": [{"Condition": {"StringNotEquals": {"aws:CalledVia": "x", "k": "v"}}}]}
    read = multivalued_as_the_simulator_reads_it(multi, None, {"aws:calledvia": ["a", "b"], "k": "v"})
    assert read["Statement"][0]["Condition"] == {"StringNotEquals": {"k": "v"}, "Null": {"aws:CalledVia": "true"}}
    assert unchanged(np_doc, session, {}) is np_doc
