"""`atc-xaccount doctor` and `local doctor`: which link of an access key's chain is broken, and the fix.

The same code for AWS and for the emulator: the cluster's request (from the registry, or
from an event for a cluster not registered yet), its external ID (from its secret), the
documents of both accounts read through the automation roles (`chain_reads`), judged by
`chain.evaluate_chain`. Exit 0 every link ok, 1 something broken, 3 only undecidable left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atc_xaccount import consumer, external_ids, registry
from atc_xaccount.chain import DEFAULT_SESSION_SECONDS, ChainReport, evaluate_chain
from atc_xaccount.chain_reads import read_chain
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext
from atc_xaccount_cli.errors import UsageError


class ClusterUnknown(UsageError):
    """The cluster is not registered and no event describes it: nothing to check."""


@dataclass(frozen=True)
class DoctorOptions:
    """What the request's context cannot tell: the access key's path, session, transport, organizations."""

    prefix: str | None = None
    session_seconds: int = DEFAULT_SESSION_SECONDS
    secure_transport: bool | None = True
    organizations: dict[str, str | None] = field(default_factory=dict)
    reveal: bool = False


def cluster_request(ctx: StepContext, cluster_id: str, event: dict[str, Any] | None) -> tuple[ClusterRequest, bool]:
    """(the request, whether the cluster is registered): from the event when given, else the registry."""
    from atc_xaccount.steps.validate import validate

    if event is not None:
        request = ClusterRequest.from_dict(validate(event, ctx.defaults)["request"])
        known = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id)
        return request, known is not None
    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, cluster_id)
    if entry is None:
        raise ClusterUnknown(f"cluster {cluster_id} is not registered; give its event with --event FILE")
    return ClusterRequest.from_dict({k: entry[k] for k in registry.REQUEST_FIELDS if k in entry}), True


def doctor(
    ctx: StepContext, cluster_id: str | None, event: dict[str, Any] | None, options: DoctorOptions
) -> tuple[int, dict[str, Any]]:
    """Read, evaluate, report; the external ID appears in the result only with `reveal`."""
    request, registered = cluster_request(ctx, cluster_id or "", event)
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    stored = external_ids.read_external_id(ctx.sessions.local_client("secretsmanager"), name)
    # An event's own externalId is the one the access key will carry; otherwise the stored one.
    external_id = request.external_id or (stored[1] if stored else None)
    docs = read_chain(ctx.sessions, request, organizations=options.organizations)
    report = evaluate_chain(
        docs,
        external_id,
        region=ctx.sessions.region,
        prefix=options.prefix if options.prefix is not None or not request.node_api else request.node_api.path,
        requested_session_seconds=options.session_seconds,
        secure_transport=options.secure_transport,
    )
    # With a Node API, the key itself is asked too: the consumer's side of the chain.
    key_link = consumer.link_for(ctx, request)
    if key_link is not None:
        report = ChainReport((*report.links, key_link))
    body = {
        "clusterId": request.cluster_id,
        "registered": registered,
        "roleArn": docs.access_role_arn,
        "externalIdSecret": name if stored else None,
        "externalId": external_id if options.reveal else None,
        **report.to_dict(),
    }
    return report.exit_code, body
