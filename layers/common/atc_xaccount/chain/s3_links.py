"""The S3 links of the chain, per bucket: c. the role's permissions, d. the bucket policy,
e. the default encryption key (pure).
"""

from __future__ import annotations

from typing import Any

from atc_xaccount.arns import split_arn
from atc_xaccount.chain.context import judge_role, principal_context, who_of
from atc_xaccount.chain.model import (
    BROKEN,
    BUCKET_ACTIONS,
    KMS_ACTIONS,
    OBJECT_ACTIONS,
    OK,
    BucketDocs,
    ChainDocuments,
    KeyDocs,
    Link,
    RoleDocs,
)
from atc_xaccount.documents import statements
from atc_xaccount.evaluate import ALLOWED, DENIED, IMPLICIT, UNDECIDABLE, Judgement, judge_resource_policy

# --- c, d, e. per bucket ---------------------------------------------------------------------------


def bucket_links(
    docs: ChainDocuments, access: RoleDocs, bucket: BucketDocs, prefix: str, region: str, secure: bool | None
) -> list[Link]:
    partition = split_arn(access.arn)[0]
    bucket_arn = f"arn:{partition}:s3:::{bucket.name}"
    wanted = [(a, bucket_arn) for a in BUCKET_ACTIONS] + [(a, f"{bucket_arn}/{prefix}*") for a in OBJECT_ACTIONS]
    ctx, absent = principal_context(docs, access)
    if secure is not None:
        ctx["aws:SecureTransport"] = secure
    return [
        _role_s3_link(docs, access, bucket, wanted, ctx, absent),
        _bucket_policy_link(docs, access, bucket, wanted, ctx, absent),
        _kms_link(docs, access, bucket, ctx, absent, region),
    ]


def _role_s3_link(
    docs: ChainDocuments,
    access: RoleDocs,
    bucket: BucketDocs,
    wanted: list[tuple[str, str]],
    ctx: dict[str, object],
    absent: frozenset[str],
) -> Link:
    claim = f"{access.name} may do what ATC needs in s3://{bucket.name}"
    failures: dict[str, list[tuple[str, str, Judgement]]] = {DENIED: [], IMPLICIT: [], UNDECIDABLE: []}
    decided: list[str] = []
    for action, resource in wanted:
        judged = judge_role(access, action, resource, ctx, absent)
        by_identity = judged.outcome == IMPLICIT and not judged.reason.startswith("permissions boundary")
        if by_identity and _bucket_policy_grants(bucket, access, action, resource, ctx, absent):
            continue  # same account: the bucket policy's Allow for the role itself is enough
        if judged.outcome == ALLOWED:
            decided.extend(s for s in judged.allow if s not in decided)
        else:
            failures[judged.outcome].append((action, resource, judged))
    name = f"s3:{bucket.name}"
    for outcome in (DENIED, IMPLICIT, UNDECIDABLE):
        if failures[outcome]:
            return _s3_failure(docs, access, name, claim, outcome, failures[outcome])
    return Link(name, claim, OK, tuple(decided), f"allowed: {', '.join(a for a, _ in wanted)}")


def _s3_failure(
    docs: ChainDocuments,
    access: RoleDocs,
    name: str,
    claim: str,
    outcome: str,
    failed: list[tuple[str, str, Judgement]],
) -> Link:
    statements = tuple(dict.fromkeys(s for _, _, j in failed for s in j.statements))
    by_resource: dict[str, list[str]] = {}
    for action, resource, _ in failed:
        by_resource.setdefault(resource, []).append(action)
    listed = "; ".join(f"{', '.join(actions)} on {resource}" for resource, actions in by_resource.items())
    reasons = "; ".join(dict.fromkeys(j.reason for _, _, j in failed))
    if outcome == UNDECIDABLE:
        fix = f"check by hand that the nodes' requests meet the conditions of {', '.join(statements)}"
        return Link(name, claim, UNDECIDABLE, statements, f"{listed}: {reasons}", fix)
    if any(j.reason.startswith("permissions boundary") for _, _, j in failed):
        boundary = access.boundary[0] if access.boundary else "?"
        fix = f"let the permissions boundary {boundary} of {access.name} allow {listed}"
    elif outcome == DENIED:
        fix = f"remove or narrow the Deny {', '.join(statements)} on {access.name}: it refuses {listed}"
    else:
        fix = f"add {listed} to {docs.access_policy_name}"
    return Link(name, claim, BROKEN, statements, f"not allowed: {listed} ({reasons})", fix)


def _bucket_policy_grants(
    bucket: BucketDocs, access: RoleDocs, action: str, resource: str, ctx: dict[str, object], absent: frozenset[str]
) -> bool:
    if bucket.policy is None:
        return False
    judged = judge_resource_policy(
        "bucket policy",
        bucket.policy,
        who_of(access),
        action,
        resource,
        context=ctx,
        account_counts=False,
        absent=absent,
    )
    return judged.outcome == ALLOWED


def _bucket_policy_link(
    docs: ChainDocuments,
    access: RoleDocs,
    bucket: BucketDocs,
    wanted: list[tuple[str, str]],
    ctx: dict[str, object],
    absent: frozenset[str],
) -> Link:
    name = f"bucket-policy:{bucket.name}"
    claim = f"the bucket policy of {bucket.name} denies {access.name} none of them"
    if "policy" in bucket.unreadable:
        return Link(
            name,
            claim,
            UNDECIDABLE,
            detail=f"cannot read the bucket policy: {bucket.unreadable['policy']}",
            fix=f"let the automation role read s3:GetBucketPolicy on {bucket.name}, or check the policy by hand",
        )
    if bucket.policy is None:
        return Link(name, claim, OK, detail="the bucket has no bucket policy")
    denied: dict[str, list[str]] = {}
    maybe: dict[str, list[str]] = {}
    why: list[str] = []
    for action, resource in wanted:
        judged = judge_resource_policy(
            "bucket policy", bucket.policy, who_of(access), action, resource, context=ctx, absent=absent
        )
        for label in judged.deny:
            denied.setdefault(label, []).append(action)
        for label in judged.unknown_deny:
            maybe.setdefault(label, []).append(action)
        why.extend(w for w in judged.why if w.split(": ", 1)[0] in judged.unknown_deny and w not in why)
    if denied:
        statements = tuple(denied)
        detail = "; ".join(
            f"{label} denies {', '.join(actions)}{_condition_note(docs, access, bucket.policy, label)}"
            f"{_not_principal_note(access, bucket.policy, label)}"
            for label, actions in denied.items()
        )
        sids = ", ".join(label.split(":", 1)[-1] for label in statements)
        fix = (
            f"the bucket policy's statement {sids} denies {access.arn}: exempt the role "
            f"(e.g. an aws:PrincipalArn condition) or narrow the Deny"
            f"{_condition_note(docs, access, bucket.policy, statements[0])}"
            f"{_not_principal_note(access, bucket.policy, statements[0])}"
        )
        return Link(name, claim, BROKEN, statements, detail, fix)
    if maybe:
        return Link(
            name,
            claim,
            UNDECIDABLE,
            tuple(maybe),
            "; ".join(why),
            f"check by hand that the nodes' requests to {bucket.name} are not denied by {', '.join(maybe)}",
        )
    return Link(name, claim, OK, detail="no statement of the bucket policy denies the role")


def _condition_note(docs: ChainDocuments, access: RoleDocs, policy: dict[str, Any], label: str) -> str:
    """Why a Deny on aws:PrincipalOrgID hits: the organization the role is (not) in."""
    stmt = _statement_by_label(policy, label)
    keys = {
        str(k).lower() for block in (stmt or {}).get("Condition", {}).values() if isinstance(block, dict) for k in block
    }
    if "aws:principalorgid" not in keys:
        return ""
    org = docs.organizations.get(access.account)
    where = f"in {org}" if org else "in no organization"
    return f" (it denies principals outside the organization named there: {access.name} is {where})"


def _not_principal_note(access: RoleDocs, policy: dict[str, Any], label: str) -> str:
    """Why a Deny with NotPrincipal hits the role it seems to spare (IAM User Guide, NotPrincipal)."""
    stmt = _statement_by_label(policy, label)
    if stmt is None or "NotPrincipal" not in stmt:
        return ""
    if access.boundary is not None:
        return (
            f" (a Deny with NotPrincipal denies every principal that has a permissions boundary, and {access.name} "
            "has one)"
        )
    return (
        f" (NotPrincipal spares an assumed-role session only by its exact session ARN, and Cluster Manager's "
        f'sessions of {access.name} are named per access key: use "Principal": "*" with the condition '
        f"ArnNotEquals aws:PrincipalArn {access.arn} instead)"
    )


def _statement_by_label(policy: dict[str, Any], label: str) -> dict[str, Any] | None:
    tail = label.split(":", 1)[-1] if ":" in label else None
    for index, stmt in enumerate(statements(policy)):
        if (tail is not None and stmt.get("Sid") == tail) or label.endswith(f"#{index}"):
            return stmt
    return None


def _kms_link(
    docs: ChainDocuments,
    access: RoleDocs,
    bucket: BucketDocs,
    ctx: dict[str, object],
    absent: frozenset[str],
    region: str,
) -> Link:
    name = f"kms:{bucket.name}"
    claim = f"{access.name} may use the default encryption key of {bucket.name}"
    if "encryption" in bucket.unreadable:
        return Link(
            name,
            claim,
            UNDECIDABLE,
            detail=f"cannot read the default encryption: {bucket.unreadable['encryption']}",
            fix=f"let the automation role read s3:GetEncryptionConfiguration on {bucket.name}",
        )
    encryption = bucket.encryption or {}
    algorithm = str(encryption.get("SSEAlgorithm") or "AES256")
    if not algorithm.startswith("aws:kms"):
        return Link(name, claim, OK, detail=f"default encryption {algorithm} (SSE-S3): no key permission needed")
    key_id = encryption.get("KMSMasterKeyID")
    if not key_id or str(key_id).endswith("alias/aws/s3") or (bucket.key is not None and bucket.key.manager == "AWS"):
        return Link(name, claim, OK, detail="SSE-KMS with the AWS managed key aws/s3: no key permission needed")
    key = bucket.key
    if key is None:
        why = bucket.unreadable.get("key", "not read")
        return Link(
            name,
            claim,
            UNDECIDABLE,
            detail=f"customer managed key {key_id}: cannot read it ({why}); a key policy that does not "
            "delegate to IAM (the account root with kms:*) refuses the automation role too",
            fix=f"check by hand that the key policy of {key_id} lets {access.arn} use "
            f"{', '.join(KMS_ACTIONS)}, and that {docs.access_policy_name} grants them (or let the automation "
            "role kms:DescribeKey and kms:GetKeyPolicy in the key policy, and run doctor again)",
        )
    kms_ctx = {**ctx, "kms:ViaService": f"s3.{region}.amazonaws.com", "kms:CallerAccount": access.account}
    key_account = split_arn(key.arn)[3]
    same_account = key_account == access.account
    results = []
    for action in KMS_ACTIONS:
        by_key = judge_resource_policy(
            "key policy", key.policy or {}, who_of(access), action, key.arn, context=kms_ctx, absent=absent
        )
        direct = judge_resource_policy(
            "key policy",
            key.policy or {},
            who_of(access),
            action,
            key.arn,
            context=kms_ctx,
            account_counts=False,
            absent=absent,
        )
        by_iam = judge_role(access, action, key.arn, kms_ctx, absent)
        results.append((action, by_key, direct, by_iam))
    return _kms_verdict(docs, access, name, claim, key, same_account, results)


def _kms_verdict(
    docs: ChainDocuments,
    access: RoleDocs,
    name: str,
    claim: str,
    key: KeyDocs,
    same_account: bool,
    results: list[tuple[str, Judgement, Judgement, Judgement]],
) -> Link:
    actions = ", ".join(KMS_ACTIONS)
    for action, by_key, _, by_iam in results:
        if by_key.outcome == DENIED:
            return Link(
                name,
                claim,
                BROKEN,
                by_key.deny,
                f"{action}: key policy {by_key.reason}",
                f"remove or narrow the key policy's Deny {', '.join(by_key.deny)} of {key.arn}",
            )
        if by_iam.outcome == DENIED:
            return Link(
                name,
                claim,
                BROKEN,
                by_iam.deny,
                f"{action}: {by_iam.reason}",
                f"remove or narrow the Deny {', '.join(by_iam.deny)} on {access.name}: "
                f"it refuses {action} on {key.arn}",
            )
    if same_account and all(d.outcome == ALLOWED for _, _, d, _ in results):
        return Link(
            name,
            claim,
            OK,
            tuple(s for _, _, d, _ in results for s in d.allow),
            f"the key policy of {key.arn} grants {access.name} {actions} itself",
        )
    if any(k.outcome == IMPLICIT for _, k, _, _ in results):
        root = f"arn:{split_arn(key.arn)[0]}:iam::{split_arn(key.arn)[3]}:root"
        return Link(
            name,
            claim,
            BROKEN,
            tuple(s for _, k, _, _ in results for s in k.unknown),
            f"the key policy of {key.arn} neither grants {access.name} {actions} nor delegates to IAM",
            f"add to the key policy of {key.arn} a statement allowing {root} kms:* (the default key policy), "
            f"or {access.arn} {actions}",
        )
    missing = [a for a, _, _, iam in results if iam.outcome == IMPLICIT]
    if missing:
        statements = tuple(dict.fromkeys(s for _, k, _, _ in results for s in k.allow))
        return Link(
            name,
            claim,
            BROKEN,
            statements,
            f"the key policy delegates to IAM ({', '.join(statements)}) but no policy of {access.name} "
            f"allows {', '.join(missing)} on {key.arn}",
            f"add {actions} on key {key.arn} to {docs.access_policy_name}",
        )
    if all(k.outcome == ALLOWED and i.outcome == ALLOWED for _, k, _, i in results):
        return Link(
            name,
            claim,
            OK,
            tuple(dict.fromkeys(s for _, k, _, i in results for s in (*k.allow, *i.allow))),
            f"{actions} on {key.arn}: allowed by the key policy and {access.name}'s policies",
        )
    unknown = tuple(dict.fromkeys(s for _, k, _, i in results for s in (*k.unknown, *i.unknown)))
    why = "; ".join(dict.fromkeys(w for _, k, _, i in results for w in (*k.why, *i.why)))
    return Link(
        name,
        claim,
        UNDECIDABLE,
        unknown,
        why or "depends on the request",
        f"check by hand that the nodes' requests meet the conditions of {', '.join(unknown)}",
    )
