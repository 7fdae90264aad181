"""The drift audit (`statemachine/audit.asl.json`): is every registered cluster's access true?

Read-only. For each READY cluster in the registry it checks the three changes and the
node role itself; a grant whose principal shows as a bare unique ID (`AROA…`) means the
node role was deleted and recreated, which silently breaks the grant. A cluster whose
deregistration did not finish (REVOKING) is reported and, with repair on, its
deregistration is re-driven (`redrive`): its access is never granted back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from atc_xaccount import external_ids, iam_ops, registry
from atc_xaccount.assume_policy import OWNED_SID, owned_resources, ownership_problems
from atc_xaccount.documents import as_list, statements
from atc_xaccount.evaluate import evaluate_trust
from atc_xaccount.model import ClusterRequest
from atc_xaccount.steps.context import StepContext, Targets
from atc_xaccount.trust import grant_external_ids, grant_problems, grant_sid

#: Drift that re-running onboarding may repair; hand-edited statements and a recreated node
#: role are reported for a human to decide.
REPAIRABLE = frozenset(
    {
        "AssumePolicyMissing",
        "AssumePolicyResourceMissing",
        "AssumePolicyDetached",
        "TrustGrantMissing",
        "ExternalIdSecretMissing",
    }
)
#: Drift kind of a change a failed compensation could not undo (issue 9 item 4).
LEFT_BEHIND = "LeftByFailedCompensation"
#: Drift kind of a deregistration that recorded its intent (REVOKING) and did not finish.
DEREGISTRATION_INCOMPLETE = "DeregistrationIncomplete"
#: Drift kind of a secret whose value is not the ID whose fingerprint the registry recorded.
EXTERNAL_ID_SECRET_MISMATCH = "ExternalIdSecretMismatch"  # noqa: S105 - a drift kind, not a secret
UNIQUE_ID = re.compile(r"^AROA[A-Z0-9]{8,}$")


#: Clusters per page: what one Map over a page holds in state (each result carries its
#: drift, up to a few hundred bytes a kind) stays far below the 256 KiB payload quota.
PAGE_SIZE = 50
#: Audited clusters the audit's output lists (findings first); the rest are counted.
CLUSTERS_IN_OUTPUT = 50


def list_registered(
    ctx: StepContext,
    start: dict[str, Any] | None = None,
    previous: list[dict[str, Any]] | None = None,
    tally: dict[str, Any] | None = None,
    *,
    scan: bool = True,
    page_size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """The next page of clusters to audit (as onboarding requests, what a repair re-runs),
    and the tally of the audit so far with the previous page's results added.

    The audit workflow loops over pages, so its state holds one page and a bounded tally
    however many clusters are registered.
    """
    tally = add_to_tally(tally or new_tally(), previous or [])
    if not scan:
        return {"clusters": [], "next": None, "tally": tally}
    entries, following = registry.registered_page(
        ctx.sessions.local_client("dynamodb"), ctx.registry_table, page_size, start
    )
    clusters = [{k: e[k] for k in registry.REQUEST_FIELDS if k in e} for e in entries]
    return {"clusters": clusters, "next": following, "tally": tally}


def new_tally() -> dict[str, Any]:
    return {"audited": 0, "inSync": 0, "drifted": 0, "failed": 0, "repaired": 0, "clusters": [], "clustersOmitted": 0}


def add_to_tally(tally: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, and the first CLUSTERS_IN_OUTPUT results, a finding before an in-sync one."""
    tally = {**tally, "clusters": list(tally["clusters"])}
    for result in results:
        finding = bool(result.get("failed") or result.get("drift"))
        tally["audited"] += 1
        kind = "failed" if result.get("failed") else "drifted" if result.get("drift") else "inSync"
        tally[kind] += 1
        tally["repaired"] += 1 if result.get("repaired") else 0
        kept: list[dict[str, Any]] = tally["clusters"]
        if len(kept) < CLUSTERS_IN_OUTPUT:
            kept.append(result)
            continue
        tally["clustersOmitted"] += 1
        in_sync = next((i for i, r in enumerate(kept) if not (r.get("failed") or r.get("drift"))), None)
        if finding and in_sync is not None:
            kept[in_sync] = result
    return tally


def audit_cluster(request: ClusterRequest, ctx: StepContext) -> dict[str, Any]:
    """Every way this cluster's access has drifted from what onboarding made (empty: none)."""
    cm, s3 = request.cluster_manager_account_id, request.s3_account_id
    targets = Targets.of(request, ctx.partition)
    cm_iam, s3_iam = ctx.sessions.client("iam", cm), ctx.sessions.client("iam", s3)
    drift: list[dict[str, Any]] = []

    def found(kind: str, account: str, resource: str, detail: str) -> None:
        drift.append(
            {"kind": kind, "account": account, "resource": resource, "detail": detail, "repairable": kind in REPAIRABLE}
        )

    entry = registry.get(ctx.sessions.local_client("dynamodb"), ctx.registry_table, request.cluster_id) or {}
    for left in entry.get(registry.LEFT_BEHIND) or []:
        resource = left.get("policyArn") or left.get("roleName") or request.cluster_id
        found(
            LEFT_BEHIND,
            left.get("account", ""),
            resource,
            f"{left.get('what')} (execution {entry.get('leftByExecution')})",
        )
    if entry.get("state") == registry.REVOKING:
        found(
            DEREGISTRATION_INCOMPLETE,
            cm,
            request.cluster_id,
            f"deregistration {entry.get('lastExecution') or ''} started and did not finish; its access is not "
            "granted back: re-run the deregistration (the audit does, with RepairDrift=true)",
        )
        return {**_result(request, drift), "redrive": True, "deregistration": _deregistration(request)}
    if entry and entry.get("state") != registry.READY:
        # Never onboarded (or deregistered): only what its failed compensation left is news, and
        # it is a human's to clean up: re-running onboarding would grant access nobody asked for.
        return {**_result(request, drift), "repairable": False}

    if iam_ops.get_role(cm_iam, cm, request.node_role_name) is None:
        found("NodeRoleMissing", cm, targets.node_role_arn, "the node role does not exist")
    policy = iam_ops.get_policy_state(cm_iam, cm, targets.assume_policy_arn)
    if policy is None:
        found("AssumePolicyMissing", cm, targets.assume_policy_arn, "the assume policy does not exist")
    elif ownership_problems(policy.document):
        detail = f"statement {OWNED_SID}: {'; '.join(ownership_problems(policy.document))}"
        found("AssumePolicyStatementModified", cm, targets.assume_policy_arn, detail)
    elif targets.access_role_arn not in owned_resources(policy.document):
        found("AssumePolicyResourceMissing", cm, targets.assume_policy_arn, f"{targets.access_role_arn} not allowed")
    if policy is not None and targets.assume_policy_arn not in _attached(cm_iam, cm, request.node_role_name):
        found("AssumePolicyDetached", cm, targets.assume_policy_arn, f"not attached to {request.node_role_name}")

    role = iam_ops.get_role(s3_iam, s3, request.access_role_name)
    stored = external_ids.read_external_id(
        ctx.sessions.local_client("secretsmanager"), external_ids.secret_name(ctx.secret_prefix, request.cluster_id)
    )
    if role is None:
        found("AccessRoleMissing", s3, targets.access_role_arn, "the access role does not exist")
    elif stored is None:
        found("ExternalIdSecretMissing", s3, targets.access_role_arn, "the cluster's external ID secret is gone")
    else:
        trust = role["AssumeRolePolicyDocument"]
        external_id = _registered_external_id(request, ctx, entry, stored[1], trust, targets, found)
        replaced = _replaced_principal(trust, grant_sid(targets.node_role_arn))
        if replaced:
            found(
                "NodeRoleReplaced",
                s3,
                targets.access_role_arn,
                f"the grant names unique ID {replaced}: {request.node_role_name} was deleted and recreated",
            )
        elif grant_problems(trust, targets.node_role_arn):
            detail = f"statement {grant_sid(targets.node_role_arn)}: "
            found(
                "GrantModified",
                s3,
                targets.access_role_arn,
                detail + "; ".join(grant_problems(trust, targets.node_role_arn)),
            )
        elif external_id is None or not evaluate_trust(trust, targets.node_role_arn, external_id).allowed:
            found("TrustGrantMissing", s3, targets.access_role_arn, "the trust policy no longer admits the node role")
    return _result(request, drift)


def _registered_external_id(
    request: ClusterRequest,
    ctx: StepContext,
    entry: dict[str, Any],
    stored: str,
    trust: dict[str, Any],
    targets: Targets,
    found: Callable[[str, str, str, str], None],
) -> str | None:
    """The ID the registry recorded (by fingerprint): the secret's, unless someone replaced it.

    A secret holding another ID is drift, never granted: the trust is then judged for the
    registered ID, found among the granted ones by its fingerprint (None: not granted).
    """
    recorded = entry.get("externalIdFingerprint")
    fps = ctx.fingerprints
    if not recorded or fps.matches(recorded, stored):
        return stored
    found(
        EXTERNAL_ID_SECRET_MISMATCH,
        "automation",
        external_ids.secret_name(ctx.secret_prefix, request.cluster_id),
        "the secret holds another external ID than the one the registry recorded for the cluster: it is "
        "not granted; put the registered value back, or rotate the external ID (rotate-external-id)",
    )
    return next((i for i in grant_external_ids(trust, targets.node_role_arn) if fps.matches(recorded, i)), None)


def _result(request: ClusterRequest, drift: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "clusterId": request.cluster_id,
        "drift": drift,
        "drifted": bool(drift),
        # A statement edited by hand is a human's decision: --repair never rewrites it.
        "repairable": bool(drift) and all(d["repairable"] for d in drift),
        "redrive": False,
        "request": request.to_dict(),
    }


def _deregistration(request: ClusterRequest) -> dict[str, Any]:
    """The offboarding input that finishes a deregistration (the names come from the registry)."""
    return {
        "clusterId": request.cluster_id,
        "clusterManagerAccountId": request.cluster_manager_account_id,
        "s3AccountId": request.s3_account_id,
    }


def _attached(iam: Any, account: str, role_name: str) -> list[str]:
    try:
        return iam_ops.attached_policy_arns(iam, account, role_name)
    except iam_ops.AwsOperationFailed:
        return []


def _replaced_principal(trust: dict[str, Any], sid: str) -> str | None:
    for statement in statements(trust):
        if statement.get("Sid") != sid:
            continue
        principal = statement.get("Principal")
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        for value in as_list(aws):
            if UNIQUE_ID.match(str(value)):
                return str(value)
    return None
