"""Verify: would the node role get in, and to what? Evaluated on the documents IAM accepted."""

from __future__ import annotations

from typing import Any

from atc_xaccount import external_ids
from atc_xaccount.errors import ExternalIdSecretMismatch, VerificationFailed
from atc_xaccount.evaluate import evaluate_identity, evaluate_trust
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.access_chain import chain_checks
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
    if not ctx.fingerprints.matches(fp, external_id):
        raise ExternalIdSecretMismatch(
            request.cluster_id,
            external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
            "the secret changed after the trust step granted the cluster's ID",
        )
    accepted_trust = ctx.fingerprints.reveal(trust["after"], external_id)
    chain = chain_checks(
        request,
        ctx,
        preflight_result.get("chainInputs") or {},
        assume_policy=policy_document,
        trust=accepted_trust,
        external_id=external_id,
    )
    result = verification(
        request,
        ctx,
        targets,
        policy_document,
        attached,
        accepted_trust,
        external_id,
        secret_arn,
        [*(preflight_result.get("bucketChecks") or []), *(preflight_result.get("chainChecks") or []), *chain],
    )
    raise_on_failed(request, result["checks"])
    return result


def raise_on_failed(request: ClusterRequest, checks: list[dict[str, Any]]) -> None:
    """VerificationFailed naming the account of the first failed link (cluster manager or S3)."""
    failed = [c for c in checks if not c["ok"]]
    if not failed:
        return
    cluster_manager_side = ("assume policy ", "assume: ", f"{request.assume_policy_name} attached")
    first = str(failed[0]["check"])
    account = request.cluster_manager_account_id if first.startswith(cluster_manager_side) else request.s3_account_id
    raise VerificationFailed(account, failed)


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
        "externalIdFingerprint": ctx.fingerprints.of(external_id),
    }


def check_buckets(
    request: ClusterRequest, ctx: StepContext, access_policy: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Does the access role's access policy cover each bucket the event names?"""
    docs = [access_policy] if access_policy else []
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
