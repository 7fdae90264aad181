"""Human reports of the operator commands that start no execution: plan, show, snapshot,
rotation, an event put on the bus, a request the layer refused."""

from __future__ import annotations

import json

from atc_xaccount_cli.render.text import Out, analyzer_lines
from atc_xaccount_cli.results_ops import EventsPut, Plan, Refused, Rotation, Shown, Snapshot


def render_plan(out: Out, plan: Plan) -> None:
    accounts = f"cluster manager {plan.cluster_manager_account}, S3 {plan.s3_account}"
    if plan.up_to_date:
        out.line(f"Plan for {plan.cluster_id} ({accounts}): up to date, nothing to change")
    else:
        changing = [c for c in plan.changes if c.action != "unchanged"]
        out.line(f"Plan for {plan.cluster_id} ({accounts}): {len(changing)} change(s), nothing written")
    for change in plan.changes:
        out.line(f"  {change.name:<14} {change.action:<10} {change.target}".rstrip())
    for text in analyzer_lines(plan.analyzer):
        out.line(text)
    if not plan.up_to_date:
        out.line("`atc-xaccount register EVENT_FILE` makes these changes.")


def render_shown(out: Out, shown: Shown) -> None:
    if not shown.registered:
        out.line(f"Cluster {shown.cluster_id} is not registered.")
        return
    out.line(f"Cluster {shown.cluster_id} ({shown.state})")
    out.line(f"  Role ARN     {shown.role_arn}")
    out.line(f"  External ID  {shown.external_id or shown.note}")
    if shown.secret_name:
        out.line(f"  secret       {shown.secret_name}")
    if shown.cluster_manager_account:
        out.line(f"  accounts     cluster manager {shown.cluster_manager_account}, S3 {shown.s3_account}")
    if shown.buckets:
        out.line(f"  buckets      {', '.join(shown.buckets)}")
    if shown.last_execution:
        out.line(f"  last run     {shown.last_execution}")


def render_snapshot(out: Out, snapshot: Snapshot) -> None:
    if snapshot.written is None:  # no --out: the world itself is the output
        out.line(json.dumps(snapshot.world, indent=2))
        return
    accounts = ", ".join(sorted(snapshot.world["accounts"]))
    out.line(f"Wrote the IAM state of {accounts} to {snapshot.written}.")
    out.line(f"Rehearse on it: atc-xaccount local run EVENT_FILE --world {snapshot.written}")


def render_rotation(out: Out, rotation: Rotation) -> None:
    out.line(f"External ID rotation of {rotation.cluster_id}:")
    for key, value in rotation.facts:
        out.line(f"  {key:<15} {value}")
    if rotation.next_step:
        out.line(f"Next: {rotation.next_step}.")


def render_events_put(out: Out, put: EventsPut) -> None:
    for entry in put.entries:
        if entry.error:
            out.line(f"The bus {put.bus} refused the {put.detail_type} event: {entry.error}")
        else:
            out.line(f"Put the {put.detail_type} event on the bus {put.bus} (event id {entry.event_id}).")
    if all(entry.error is None for entry in put.entries):
        out.line("EventBridge starts the workflow if a rule delivers the event (its execution name is chosen by")
        out.line("EventBridge); `atc-xaccount show CLUSTER` shows the result once it has run.")


def render_refused(out: Out, refused: Refused) -> None:
    out.line(f"{refused.command}: refused, nothing written")
    out.line(f"  error  {refused.error}")
    out.line(f"  cause  {refused.message}")
