"""Preflight: prove both accounts' prerequisites and quotas before the first write.

It reads each thing once, decides with the pure policy functions what the converge steps
must change (the `plan`), and, when nothing must change, verifies right away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atc_xaccount import analyzer, external_ids, iam_ops, locks, registry, staged_ids
from atc_xaccount.assume_policy import OWNED_SID, merge_assume_policy
from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.errors import AwsOperationFailed, ExternalIdSecretMismatch, PrerequisiteMissing, VerificationFailed
from atc_xaccount.extid import generate_external_id
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps import reserve, write_proof
from atc_xaccount.steps.access_chain import (
    bucket_inputs,
    bucket_link_checks,
    chain_checks,
    document_hashes,
    role_inputs,
    verify_inputs,
)
from atc_xaccount.steps.admission import admit_onboarding
from atc_xaccount.steps.checks import (
    check_attach_quota,
    check_policy_quota,
    check_role_path,
    check_trust_quota,
    guard_assume_policy,
    guard_trust,
    lint,
    owned_statements,
    trust_quota,
    trust_resource,
)
from atc_xaccount.steps.commit import groupable
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.steps.locking import fenced, fenced_policy_state, trust_hash, trust_key
from atc_xaccount.steps.record import registration_entry
from atc_xaccount.steps.verify import check_buckets, raise_on_failed, verification
from atc_xaccount.trust import grant_external_ids, grant_sid, merge_trust_grant, remove_trust_grant


def preflight(
    request: ClusterRequest,
    ctx: StepContext,
    owner: str | None = None,
    locked: bool = False,
    repair: bool = False,
    reserving: bool = False,
) -> dict[str, Any]:
    """Prove every prerequisite and quota holds before the first write; say what must change.

    Reads each thing once, in the order that lets a re-delivered event stop early, and
    hands the converge steps what they need (`plan`) so they do not read it again. When
    something must change it takes the locks of both resources at once, if they are as
    their last holder left them (`locks.acquire_if_unchanged`); `locked` says whether it
    did. `locked=True` on input means the locks are already held (the slow path).
    `upToDate` lets the state machine skip locking and writing (zero write calls).
    `reserving` (a bulk's phase 1, steps/reserve.py) plans only: no lock is taken. A bulk
    row whose phase 1 reserved takes the grouped path (`route_reserved`).
    First of all, the registry says whether this request may act on the cluster at all
    (`admission`): another account's cluster, one being deregistered, or a repair of a
    cluster that is not READY is refused before any call into a target account.
    """
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    entry = admit_onboarding(request, ctx, repair=repair)

    def cluster_manager_side() -> tuple[Any, Any, bool, dict[str, Any] | None]:
        cm_iam = ctx.sessions.client("iam", cm)
        policy = fenced_policy_state(ctx, request, cm_iam, targets.assume_policy_arn)
        node_role = iam_ops.get_role(cm_iam, cm, request.node_role_name)
        if node_role is None:
            raise PrerequisiteMissing("role", request.node_role_name, cm)
        check_role_path(node_role, cm)
        attached = _node_role_attachments(request, cm_iam)
        needs_attach = policy is None or targets.assume_policy_arn not in attached
        if needs_attach:
            # Every quota before the first write: the attach must have room on the node role.
            check_attach_quota(cm_iam, cm, request.node_role_name, len(attached))
        return cm_iam, policy, needs_attach, role_inputs(ctx, cm, node_role)

    def s3_side() -> tuple[Any, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        s3_iam = ctx.sessions.client("iam", s3)
        access_role = fenced(
            ctx, trust_key(request), lambda: iam_ops.get_role(s3_iam, s3, request.access_role_name), trust_hash
        )
        if access_role is None:
            raise PrerequisiteMissing("role", request.access_role_name, s3)
        check_role_path(access_role, s3)
        attached = iam_ops.attached_policy_arns(s3_iam, s3, request.access_role_name)
        access_arn = next(
            (arn for arn in attached if arn.rsplit("/", 1)[-1].lower() == request.access_policy_name.lower()), None
        )
        if access_arn is None:
            raise PrerequisiteMissing(
                f"policy attached to role {request.access_role_name}", request.access_policy_name, s3
            )
        access_policy = None
        if request.buckets:
            state = iam_ops.get_policy_state(s3_iam, s3, access_arn)
            access_policy = state.document if state else None
        inputs = {
            "access": role_inputs(
                ctx, s3, access_role, ((request.access_policy_name, access_policy),) if access_policy else ()
            ),
            "buckets": bucket_inputs(ctx, s3, list(request.buckets)),
        }
        return s3_iam, access_role, check_buckets(request, ctx, access_policy), inputs

    # The three sides do not depend on each other: their round trips overlap.
    sizing, cm_side, s3_result = _concurrently(lambda: _sizing(request, ctx), cluster_manager_side, s3_side)
    external_id, secret_changes, secret_arn, stored_id = sizing
    cm_iam, policy, attach_needed, node_inputs = cm_side
    s3_iam, access_role, bucket_checks, chain_inputs = s3_result
    chain_inputs["node"] = node_inputs
    replacing = stored_id is not None and secret_changes
    _check_registered_id(request, ctx, entry, stored_id)
    if not all(c["ok"] for c in bucket_checks):
        # The access policy is the S3 account's, not ours to widen: refuse before any write.
        raise VerificationFailed(s3, [c for c in bucket_checks if not c["ok"]])

    policy_name = f"policy {request.assume_policy_name}"
    with owned_statements(cm, policy_name):
        desired_policy, policy_changes = merge_assume_policy(
            policy.document if policy else None, targets.access_role_arn
        )
    if policy_changes:
        guard_assume_policy(
            policy.document if policy else None,
            desired_policy,
            {targets.access_role_arn},
            cm,
            request.assume_policy_name,
        )
    policy_size = check_policy_quota(desired_policy, request.assume_policy_name, cm)
    analyzed: dict[str, str] = {}
    if policy_changes:
        analyzed["assumePolicy"] = lint(
            ctx, desired_policy, analyzer.IDENTITY, {OWNED_SID}, request.assume_policy_name, cm
        )
        if policy is not None:
            policy = iam_ops.with_versions(cm_iam, cm, policy)

    trust = access_role["AssumeRolePolicyDocument"]
    with owned_statements(s3, trust_resource(request.access_role_name)):
        merged_trust, trust_changes = merge_trust_grant(trust, targets.node_role_arn, external_id)
        if stored_id is not None and replacing and stored_id in grant_external_ids(merged_trust, targets.node_role_arn):
            # The event gives the cluster a new ID: the stored one stops opening the role in the same write.
            merged_trust, trust_changes = remove_trust_grant(merged_trust, targets.node_role_arn, stored_id)[0], True
    if trust_changes:
        guard_trust(
            trust,
            merged_trust,
            targets.node_role_arn,
            {(targets.node_role_arn, external_id)},
            s3,
            request.access_role_name,
        )
    trust_size = non_whitespace_size(merged_trust)
    quota = None
    if trust_changes:
        quota = trust_quota(s3_iam, s3, trust_size)
        check_trust_quota(merged_trust, quota, request.access_role_name, s3)
        analyzed["trust"] = lint(
            ctx,
            merged_trust,
            analyzer.TRUST,
            {grant_sid(targets.node_role_arn)},
            f"trust policy of {request.access_role_name}",
            s3,
        )
    needed = [
        name
        for name, needs in (
            ("externalId", secret_changes),
            ("assumePolicy", policy_changes),
            ("attach", attach_needed),
            ("trust", trust_changes),
        )
        if needs
    ]
    _prove_writes(request, ctx, targets, policy, policy_changes, attach_needed, trust_changes)
    result: dict[str, Any] = {
        "prerequisites": "present",
        "upToDate": False,
        "changesNeeded": needed,
        "verified": None,
        "recordNeeded": True,
        "locked": False,
        "locks": {"keys": [], "owner": owner},
        "bucketChecks": bucket_checks,
        "assumePolicySize": policy_size,
        "assumePolicyQuota": iam_ops.MANAGED_POLICY_SIZE_QUOTA,
        "trustPolicySize": trust_size,
        "trustPolicyQuota": quota,
        "accessAnalyzer": analyzed,
        "plan": {
            "policy": _policy_plan(policy),
            "attachNeeded": attach_needed,
            "externalId": {
                "stored": secret_arn is not None,
                "replacing": replacing,
                # The staged ID MergeTrust grants, then promotes (`staged_ids`).
                "requested": bool(request.requested_fingerprint) and replacing,
                # What MergeTrust must find in the secret (None: it generates the ID itself).
                "fingerprint": None
                if secret_changes and not request.requested_fingerprint and not request.external_id
                else ctx.fingerprints.of(external_id),
            },
        },
    }
    # The documents as they will be once the changes are made (as they are, when none are
    # needed), evaluated exactly as Verify evaluates what IAM accepted: access that a
    # foreign Deny would neutralize fails here, before any write, naming the Deny.
    chain = chain_checks(
        request, ctx, chain_inputs, assume_policy=desired_policy, trust=merged_trust, external_id=external_id
    )
    verified = verification(
        request, ctx, targets, desired_policy, True, merged_trust, external_id, secret_arn, [*bucket_checks, *chain]
    )
    # Small state: verdicts and hashes travel to Verify, never the bucket or key policies.
    result["chainInputs"] = verify_inputs(chain_inputs)
    result["chainChecks"] = bucket_link_checks(chain)
    result["chainDocuments"] = document_hashes(chain_inputs)
    raise_on_failed(request, verified["checks"])
    if not needed:
        result["verified"] = verified
        result["upToDate"] = True
        result["recordNeeded"] = locked or registry.differs(
            entry, registration_entry(request, ctx, owner, verified["externalIdFingerprint"])
        )
    seen = {
        locks.trust_lock_key(s3, request.access_role_name): locks.document_hash(trust),
        locks.policy_lock_key(cm, request.assume_policy_name): locks.policy_hash(
            policy.default_version if policy else None, policy.document if policy else None
        ),
    }
    result["seen"] = seen
    # Pure additions converge by document (steps/commit.py): no lock here, the commit takes it.
    result["groupable"] = (
        bool(owner and ctx.locks_table)
        and not (locked or ctx.dry_run or result["upToDate"])
        and groupable(needed, result["plan"])
    )
    if result["groupable"]:
        result["plan"].update(grouped=True, clusterManagerChange=bool(policy_changes or attach_needed))
    reserved = set() if reserving or locked or ctx.dry_run else reserve.reserved_on(request, ctx, owner)
    if reserved:
        reserve.route_reserved(request, ctx, result, reserved, bool(policy_changes or attach_needed))
    if locked:
        result["locked"], result["locks"] = True, {"keys": sorted(seen), "owner": owner}
    elif not result["upToDate"] and not result["groupable"] and not ctx.dry_run and owner and not reserving:
        taken = locks.acquire_if_unchanged(ctx.sessions.local_client("dynamodb"), ctx.locks_table, seen, owner)
        if taken is not None:
            result["locked"], result["locks"] = True, taken
    return result


def _check_registered_id(
    request: ClusterRequest, ctx: StepContext, entry: dict[str, Any] | None, stored: str | None
) -> None:
    """The stored ID must be the one whose fingerprint the registry recorded (READY clusters).

    A secret overwritten by hand (or by anyone who may write it) is never granted: it would
    widen the trust beside the registered ID and move the registry to it.
    """
    recorded = (entry or {}).get("externalIdFingerprint")
    if stored is None or not recorded or (entry or {}).get("state") != registry.READY:
        return
    if not ctx.fingerprints.matches(recorded, stored):
        raise ExternalIdSecretMismatch(
            request.cluster_id,
            external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
            "its fingerprint differs from the registry's",
        )


def _prove_writes(
    request: ClusterRequest,
    ctx: StepContext,
    targets: Targets,
    policy: Any,
    policy_changes: bool,
    attach: bool,
    trust: bool,
) -> None:
    """Every IAM write of the plan is allowed to the automation role, or AutomationRoleDenied now."""
    writes = write_proof.planned_writes(
        cm=request.cluster_manager_account_id,
        s3=request.s3_account_id,
        node_role=(request.node_role_name, targets.node_role_arn),
        access_role=(request.access_role_name, targets.access_role_arn),
        policy=(request.assume_policy_name, targets.assume_policy_arn),
        create_policy=policy_changes and policy is None,
        version_policy=policy_changes and policy is not None,
        retire_version=policy is not None and len(policy.versions) >= iam_ops.MAX_POLICY_VERSIONS,
        attach=attach,
        trust=trust,
    )
    write_proof.prove_allowed(ctx, writes)


def _concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent reads at once and return their results in order.

    The first failure, in the order given, is raised once all have finished. Each call runs
    in a copy of the caller's context variables (what the caller set stays visible).
    """
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="preflight") as pool:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    return [future.result() for future in futures]


def _node_role_attachments(request: ClusterRequest, cm_iam: Any) -> list[str]:
    """The managed policies attached to the node role (the caller proved the role exists):
    whether the assume policy must still be attached, and whether the role has room for it.
    """
    cm = request.cluster_manager_account_id
    try:
        return iam_ops.attached_policy_arns(cm_iam, cm, request.node_role_name)
    except AwsOperationFailed as exc:
        if exc.code == "NoSuchEntity":
            raise PrerequisiteMissing("role", request.node_role_name, cm) from exc
        raise


def _policy_plan(policy: Any) -> dict[str, Any] | None:
    """The assume policy as read under (or before taking) the lock, for EnsureAssumePolicy."""
    if policy is None:
        return None
    return {
        "arn": policy.arn,
        "defaultVersion": policy.default_version,
        "document": policy.document,
        "versions": [
            {"versionId": v.version_id, "isDefault": v.is_default, "created": v.created} for v in policy.versions
        ],
        "attachmentCount": policy.attachment_count,
    }


def external_id_for_sizing(request: ClusterRequest, ctx: StepContext) -> tuple[str, bool, str | None]:
    """(external ID, whether its secret must still be written, the secret's ARN if it exists).

    When no ID exists yet, one of the length that will be generated stands in: allowed
    external ID characters need no JSON escaping, so the merged policy's size depends only
    on the ID's length, and preflight can check the quota before the ID exists.
    """
    external_id, changes, arn, _ = _sizing(request, ctx)
    return external_id, changes, arn


def _sizing(request: ClusterRequest, ctx: StepContext) -> tuple[str, bool, str | None, str | None]:
    """`external_id_for_sizing` plus the stored ID (the one a new `externalId` replaces).

    A request whose event gave an ID carries its fingerprint (`staged_ids`): the ID is the
    secret's current one already, or its staged version, which must be that very ID.
    """
    secrets = ctx.sessions.local_client("secretsmanager")
    name = external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    stored = external_ids.read_external_id(secrets, name)
    arn, value = (stored[0], stored[1]) if stored else (None, None)
    if request.requested_fingerprint:
        fps = ctx.fingerprints
        if value is not None and fps.matches(request.requested_fingerprint, value):
            # Staging created the secret with it (this execution's to undo), or it is the cluster's ID.
            return (value, True, None, None) if request.requested_created else (value, False, arn, value)
        staged = staged_ids.read_staged(secrets, name)
        if staged is None or not fps.matches(request.requested_fingerprint, staged[1]):
            raise ExternalIdSecretMismatch(
                request.cluster_id, name, "the external ID the request gave is not the one staged in the secret"
            )
        return staged[1], True, arn, value
    if request.external_id:
        return request.external_id, value != request.external_id, arn, value
    if value is not None:
        return value, False, arn, value
    return generate_external_id(), True, None, None
