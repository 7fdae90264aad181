"""Verify: would the node role get in, and to what? Evaluated on the documents IAM accepted."""

from __future__ import annotations

from typing import Any

from atc_xaccount import external_ids, iam_ops
from atc_xaccount.errors import VerificationFailed
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust
from atc_xaccount.model import ClusterRequest
from atc_xaccount.redact import fingerprint, reveal
from atc_xaccount.steps.context import StepContext, Targets

BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


def verify(
    request: ClusterRequest, ctx: StepContext, preflight_result: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """Evaluate the documents both accounts now hold: would the node role get in, and to what?

    The documents are the ones IAM accepted in this execution's writes, under the locks:
    no read-back of IAM. The trust policy travels redacted; the cluster's external ID is
    read from its secret (one call) and only its own fingerprints are revealed, so the
    evaluation is exactly the one preflight made on the unredacted documents.
    """
    targets = Targets.of(request, ctx.partition)
    plan = preflight_result["plan"]
    granted = changes.get("clusterManager") or {}
    policy = granted.get("assumePolicy") or {}
    policy_document = policy.get("after") or (plan["policy"] or {}).get("document") or {}
    attached = not plan["attachNeeded"] or bool((granted.get("attach") or {}).get("after"))
    trust = changes.get("trust") or {}
    fp = trust.get("externalIdFingerprint")
    if not fp:
        raise VerificationFailed(request.s3_account_id, [check("the trust step ran", False, "no trust change record")])
    secret_arn, external_id = external_ids.require_external_id(
        ctx.sessions.local_client("secretsmanager"), external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    )
    if fingerprint(external_id) != fp:
        detail = "the cluster's secret holds another external ID than the one the trust step granted"
        raise VerificationFailed(request.s3_account_id, [check("the granted external ID is stored", False, detail)])
    result = verification(
        request,
        ctx,
        targets,
        policy_document,
        attached,
        reveal(trust["after"], external_id),
        external_id,
        secret_arn,
        preflight_result.get("bucketChecks") or [],
    )
    failed = [c for c in result["checks"] if not c["ok"]]
    if failed:
        raise VerificationFailed(
            request.s3_account_id if any("trust" in c["check"] for c in failed) else request.cluster_manager_account_id,
            failed,
        )
    return result


def verification(
    request: ClusterRequest,
    ctx: StepContext,
    targets: Targets,
    policy_document: dict[str, Any],
    attached: bool,
    trust: dict[str, Any],
    external_id: str,
    secret_arn: str | None,
    bucket_checks: list[dict[str, Any]],
) -> dict[str, Any]:
    """Evaluate the identity side, the attachment, the trust both ways, and the buckets.

    The one evaluation of both paths: preflight calls it on the documents it is about to
    write (or that need no change), Verify on the documents IAM accepted. Every Deny
    counts; the failing check names the statements that decided it.
    """
    documents = [policy_document] if policy_document else []
    identity = evaluate_identity(documents, "sts:AssumeRole", targets.access_role_arn)
    admitted = evaluate_trust(trust, targets.node_role_arn, external_id)
    refused = evaluate_trust(trust, targets.node_role_arn, None)
    checks = [
        check("assume policy allows sts:AssumeRole on the access role", identity.allowed, identity.reason),
        check(f"{request.assume_policy_name} attached to {request.node_role_name}", attached, ""),
        check("trust admits the node role with the external ID", admitted.allowed, admitted.reason),
        check("trust refuses the node role without an external ID", not refused.allowed, refused.reason),
        *bucket_checks,
    ]
    return {
        "verified": all(c["ok"] for c in checks),
        "checks": checks,
        "roleArn": targets.access_role_arn,
        "nodeRoleArn": targets.node_role_arn,
        "externalIdSecret": external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        "externalIdSecretArn": secret_arn,
        "externalIdFingerprint": fingerprint(external_id),
    }


def check_buckets(
    request: ClusterRequest, ctx: StepContext, s3_iam: Any, access_attached: list[str]
) -> list[dict[str, Any]]:
    """Does the access role's access policy cover each bucket the event names?"""
    if not request.buckets:
        return []
    s3 = request.s3_account_id
    access_arn = next(
        (arn for arn in access_attached if arn.rsplit("/", 1)[-1].lower() == request.access_policy_name.lower()),
        None,
    )
    state = iam_ops.get_policy_state(s3_iam, s3, access_arn) if access_arn else None
    docs = [state.document] if state else []
    checks = []
    for bucket in request.buckets:
        bucket_arn = f"arn:{ctx.partition}:s3:::{bucket}"
        denied = [
            action
            for action, resource in [(a, bucket_arn) for a in BUCKET_ACTIONS]
            + [(a, f"{bucket_arn}/*") for a in OBJECT_ACTIONS]
            if not evaluate_identity(docs, action, resource).allowed
        ]
        checks.append(
            check(
                f"{request.access_policy_name} grants bucket {bucket}",
                not denied,
                f"not allowed: {', '.join(denied)}" if denied else "",
            )
        )
    return checks


def check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": bool(ok), "detail": detail}
