"""The doctor's report: the first broken link and its fix, then every link with its verdict."""

from __future__ import annotations

from atc_xaccount.chain import OK
from atc_xaccount_cli.render.text import Out
from atc_xaccount_cli.results_ops import Doctored


def render_doctor(out: Out, result: Doctored) -> None:
    first = result.first_broken
    if first:
        out.line(f"BROKEN  {first.claim}")
        out.line(f"  why  {first.detail}")
        out.line(f"  fix  {first.fix}")
    elif result.verdict == OK:
        out.line(f"OK  every link of {result.cluster_id}'s access chain holds")
    else:
        out.line("UNDECIDABLE  nothing is broken, but some links depend on the request's context")
    out.line()
    for link in result.links:
        decided = f"  [{', '.join(link.statements)}]" if link.statements else ""
        out.line(f"  {link.verdict:<11} {link.name:<32} {link.claim}{decided}")
        if link.verdict != OK and link != first and link.fix:
            out.line(f"  {'':<11} {'':<32} fix: {link.fix}")
    out.line()
    out.line(f"  Role ARN     {result.role_arn}")
    if result.external_id:
        out.line(f"  External ID  {result.external_id}")
    elif result.secret_name:
        out.line(f"  External ID  in {result.secret_name} (--reveal prints it)")
