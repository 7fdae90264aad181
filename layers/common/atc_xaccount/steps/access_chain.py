"""The links of the access chain that onboarding can read cheaply, for Preflight and Verify.

Our three changes can all be in place and the access key still fail: a bucket policy
that denies the role, a customer managed KMS key it may not use, a permissions boundary
on either role. Preflight reads what those links need (the event's buckets' policy and
default encryption, the two roles' boundaries) and both Preflight (on the documents it
is about to write) and Verify (on the documents IAM accepted) judge them with the same
`evaluate_chain` the doctor uses. A `broken` link fails the onboarding before any write;
an `undecidable` one (a condition on request context nobody can know here) is reported,
never called ok, and does not fail it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from atc_xaccount import iam_ops
from atc_xaccount.chain import BROKEN, BucketDocs, ChainDocuments, KeyDocs, RoleDocs, evaluate_chain
from atc_xaccount.chain_reads import read_buckets
from atc_xaccount.evaluate import UNDECIDABLE
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext, Targets

#: Links of our own three changes: the existing checks name them already.
_OWN_LINKS = frozenset({"assume", "trust"})
#: Links no write of ours can change (the access role's policies and boundary, the bucket
#: policy, the key policy): judged once, in Preflight; their verdicts travel, not the documents.
BUCKET_LINKS = ("s3:", "bucket-policy:", "kms:")


def role_inputs(
    ctx: StepContext, account: str, role: dict[str, Any] | None, policies: tuple[tuple[str, Any], ...] = ()
) -> dict[str, Any] | None:
    """A role's part of the inputs (plain JSON: it travels from Preflight to Verify).

    `role` is its GetRole answer; a boundary costs GetPolicy + GetPolicyVersion.
    """
    if role is None:
        return None
    boundary = None
    boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    unreadable: dict[str, str] = {}
    if boundary_arn:
        state = iam_ops.get_policy_state(ctx.sessions.client("iam", account), account, boundary_arn)
        if state is None:
            unreadable[boundary_arn] = "NoSuchEntity"
        else:
            boundary = [boundary_arn, state.document]
    return {
        "uniqueId": role.get("RoleId"),
        "maxSessionDuration": role.get("MaxSessionDuration"),
        "boundary": boundary,
        "policies": [list(p) for p in policies],
        "unreadable": unreadable,
    }


def bucket_inputs(ctx: StepContext, account: str, buckets: list[str]) -> list[dict[str, Any]]:
    """Each bucket's policy and default encryption: 2 calls, 2 more for a customer managed key."""
    return [dataclasses.asdict(b) for b in read_buckets(ctx.sessions, account, buckets)]


def _role_docs(arn: str, data: dict[str, Any] | None, *, trust: dict[str, Any] | None = None, extra: Any = ()) -> Any:
    if data is None:
        return None
    boundary = data.get("boundary")
    return RoleDocs(
        arn=arn,
        unique_id=data.get("uniqueId"),
        trust=trust,
        policies=tuple((name, doc) for name, doc in [*extra, *data.get("policies", [])]),
        boundary=(boundary[0], boundary[1]) if boundary else None,
        max_session_duration=data.get("maxSessionDuration"),
        unreadable=dict(data.get("unreadable") or {}),
    )


def _bucket(data: dict[str, Any]) -> BucketDocs:
    key = data.get("key")
    return BucketDocs(
        name=data["name"],
        policy=data.get("policy"),
        encryption=data.get("encryption"),
        key=KeyDocs(**key) if key else None,
        unreadable=dict(data.get("unreadable") or {}),
    )


def chain_checks(
    request: ClusterRequest,
    ctx: StepContext,
    inputs: dict[str, Any],
    *,
    assume_policy: dict[str, Any] | None,
    trust: dict[str, Any],
    external_id: str,
) -> list[dict[str, Any]]:
    """The cheap links judged on these documents, as checks (`ok` false only when broken)."""
    targets = Targets.of(request, ctx.partition)
    assume = ((request.assume_policy_name, assume_policy),) if assume_policy else ()
    docs = ChainDocuments(
        targets.node_role_arn,
        targets.access_role_arn,
        node=_role_docs(targets.node_role_arn, inputs.get("node"), extra=assume),
        access=_role_docs(targets.access_role_arn, inputs.get("access"), trust=trust),
        buckets=tuple(_bucket(b) for b in inputs.get("buckets") or []),
        access_policy_name=request.access_policy_name,
        assume_policy_name=request.assume_policy_name,
    )
    report = evaluate_chain(docs, external_id, region=ctx.sessions.region)
    checks = []
    for link in report.links:
        if link.name in _OWN_LINKS and link.verdict != BROKEN:
            continue
        detail = link.detail if link.verdict != BROKEN else f"{link.detail} — fix: {link.fix}"
        if link.verdict == UNDECIDABLE:
            detail = f"undecidable here: {link.detail}"
        decided = f" (decided by {', '.join(link.statements)})" if link.statements else ""
        checks.append(
            {
                "check": f"{link.name}: {link.claim}",
                "ok": link.verdict != BROKEN,
                "verdict": link.verdict,
                "detail": detail + decided,
            }
        )
    return checks


def bucket_link_checks(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checks of the links our writes cannot change (Verify takes them from Preflight)."""
    return [c for c in checks if str(c["check"]).startswith(BUCKET_LINKS)]


def verify_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """What Verify needs of Preflight's inputs to judge the links our writes change (assume,
    trust) and the session: each role's unique ID, MaxSessionDuration and the node role's
    boundary (one managed policy, at most 6,144 characters). Bucket policies (up to 20 KB
    each) and key policies (32 KB) stay out of the state: 256 KiB is about 5 to 25 of them.
    """
    small: dict[str, Any] = {}
    for side, keep in (("node", ("uniqueId", "maxSessionDuration", "boundary", "unreadable")), ("access", ())):
        data = inputs.get(side)
        if data is not None:
            small[side] = {k: data[k] for k in ("uniqueId", "maxSessionDuration", *keep) if k in data}
    return small


def document_hashes(inputs: dict[str, Any]) -> dict[str, Any]:
    """The hashes of the documents the bucket links were judged on (`locks.document_hash`)."""
    from atc_xaccount.locks import document_hash

    access = inputs.get("access") or {}
    boundary = access.get("boundary")
    access_policy = next((doc for _, doc in access.get("policies") or []), None)
    buckets = {}
    for bucket in inputs.get("buckets") or []:
        key = (bucket.get("key") or {}).get("policy")
        buckets[bucket["name"]] = {
            "policy": document_hash(bucket["policy"]) if bucket.get("policy") is not None else None,
            "keyPolicy": document_hash(key) if key is not None else None,
        }
    return {
        "accessPolicy": document_hash(access_policy) if access_policy is not None else None,
        "accessBoundary": document_hash(boundary[1]) if boundary else None,
        "buckets": buckets,
    }
