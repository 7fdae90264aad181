"""The whole access chain of an ATC access key, evaluated link by link (pure).

From the node role to the bytes in the bucket, every link an access key in Cluster
Manager (Credentials -> Assume Role) needs, judged with `evaluate`'s three-valued
judgements over the documents of both accounts:

  a. atc-node may call sts:AssumeRole on the access role (its policies and boundary);
  b. the access role's trust policy admits atc-node with the external ID (and names the
     current atc-node, not the unique ID of a deleted one);
  c. the access role may do each action atc-s3-policy is documented to need, per bucket;
  d. the bucket policy denies none of them;
  e. with SSE-KMS under a customer managed key, the role may use the key (IAM and key policy);
  f. the access role's MaxSessionDuration covers the session Cluster Manager asks for.

Each link is `ok`, `broken` or `undecidable` (a condition on request context this project
cannot know: never "ok"), names the statements that decided it and says how to fix it.
No AWS call here: `chain_reads` reads the documents, the doctor and Verify evaluate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atc_xaccount.arns import split_arn
from atc_xaccount.evaluate import (
    ABSENT_KEYS,
    ALLOWED,
    DENIED,
    IMPLICIT,
    UNDECIDABLE,
    Judgement,
    Who,
    judge_identity,
    judge_resource_policy,
    judge_trust,
    within_boundary,
)

OK, BROKEN = "ok", "broken"

#: What the ATC documentation says atc-s3-policy must grant (bucket ARN, object ARN).
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
#: S3 asks KMS for a data key to write and to decrypt one to read (and to finish multipart uploads).
KMS_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")

#: Cluster Manager's session length is not documented; AssumeRole's default is one hour,
#: which every role allows (MaxSessionDuration is 3,600 to 43,200 seconds).
DEFAULT_SESSION_SECONDS = 3600


@dataclass(frozen=True)
class RoleDocs:
    """A role as IAM holds it: trust, identity policies (name, document), boundary."""

    arn: str
    unique_id: str | None = None
    trust: dict[str, Any] | None = None
    #: Attached managed policies' default versions, then inline policies, as (name, document).
    policies: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: The permissions boundary as (policy ARN, default document), or None.
    boundary: tuple[str, dict[str, Any]] | None = None
    max_session_duration: int | None = None
    #: Documents that could not be read (name -> why): an unread policy might deny.
    unreadable: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def account(self) -> str:
        return split_arn(self.arn)[3]


@dataclass(frozen=True)
class KeyDocs:
    """A KMS key as DescribeKey and GetKeyPolicy show it."""

    arn: str
    manager: str  # "AWS" (aws/s3) or "CUSTOMER"
    policy: dict[str, Any] | None = None


@dataclass(frozen=True)
class BucketDocs:
    """A bucket's policy and default encryption; `unreadable` says what could not be read."""

    name: str
    policy: dict[str, Any] | None = None
    #: The first rule's ApplyServerSideEncryptionByDefault (SSEAlgorithm, KMSMasterKeyID).
    encryption: dict[str, Any] | None = None
    key: KeyDocs | None = None
    unreadable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainDocuments:
    """Everything the chain is judged on; a role that does not exist is None."""

    node_role_arn: str
    access_role_arn: str
    node: RoleDocs | None
    access: RoleDocs | None
    buckets: tuple[BucketDocs, ...] = ()
    #: Account -> its AWS Organizations ID (None: in no organization); an absent account is unknown.
    organizations: Mapping[str, str | None] = field(default_factory=dict)
    access_policy_name: str = "atc-s3-policy"
    assume_policy_name: str = "atc-s3-assume-role"


@dataclass(frozen=True)
class Link:
    """One link of the chain: its verdict, the statements that decided it, and the fix."""

    name: str
    claim: str
    verdict: str
    statements: tuple[str, ...] = ()
    detail: str = ""
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.name,
            "claim": self.claim,
            "verdict": self.verdict,
            "statements": list(self.statements),
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class ChainReport:
    links: tuple[Link, ...]

    @property
    def first_broken(self) -> Link | None:
        return next((link for link in self.links if link.verdict == BROKEN), None)

    @property
    def verdict(self) -> str:
        verdicts = {link.verdict for link in self.links}
        return BROKEN if BROKEN in verdicts else UNDECIDABLE if UNDECIDABLE in verdicts else OK

    @property
    def exit_code(self) -> int:
        """0 every link ok, 1 something broken, 3 only undecidable links left."""
        return {OK: 0, BROKEN: 1, UNDECIDABLE: 3}[self.verdict]

    def link(self, name: str) -> Link:
        return next(link for link in self.links if link.name == name)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_broken
        return {
            "verdict": self.verdict,
            "firstBroken": first.to_dict() if first else None,
            "links": [link.to_dict() for link in self.links],
        }


def normalize_prefix(path: str | None) -> str:
    """Cluster Manager's Path ("/" for the whole bucket) as an S3 key prefix ("" or "dir/")."""
    cleaned = (path or "").strip("/")
    return f"{cleaned}/" if cleaned else ""


def evaluate_chain(
    docs: ChainDocuments,
    external_id: str | None,
    *,
    region: str,
    prefix: str | None = None,
    requested_session_seconds: int = DEFAULT_SESSION_SECONDS,
    secure_transport: bool | None = True,
) -> ChainReport:
    """Judge every link; `secure_transport` says whether the nodes reach S3 over HTTPS (None: unknown)."""
    links: list[Link] = [_assume_link(docs, external_id), _trust_link(docs, external_id)]
    if docs.access is not None:
        key_prefix = normalize_prefix(prefix)
        for bucket in docs.buckets:
            links.extend(_bucket_links(docs, docs.access, bucket, key_prefix, region, secure_transport))
    links.append(_session_link(docs, requested_session_seconds))
    return ChainReport(tuple(links))


# --- context --------------------------------------------------------------------------------


def _principal_context(docs: ChainDocuments, role: RoleDocs) -> tuple[dict[str, object], frozenset[str]]:
    """What the request of a session of `role` carries that is known here, and what is known absent."""
    ctx: dict[str, object] = {"aws:PrincipalType": "AssumedRole"}
    absent = set(ABSENT_KEYS)
    if role.account in docs.organizations:
        org = docs.organizations[role.account]
        if org is None:
            absent.add("aws:principalorgid")
        else:
            ctx["aws:PrincipalOrgID"] = org
    return ctx, frozenset(absent)


def _who(role: RoleDocs) -> Who:
    return Who(role.arn, role.unique_id)


def _identity(
    role: RoleDocs, action: str, resource: str, context: Mapping[str, object], absent: frozenset[str]
) -> Judgement:
    ctx = {"aws:PrincipalArn": role.arn, "aws:PrincipalAccount": role.account, **context}
    judged = judge_identity(list(role.policies), action, resource, context=ctx, absent=absent)
    boundary = None
    if role.boundary is not None:
        name, document = role.boundary
        boundary = judge_identity(
            [(f"boundary {name.rsplit('/', 1)[-1]}", document)], action, resource, context=ctx, absent=absent
        )
    result = within_boundary(judged, boundary)
    if result.outcome == ALLOWED and role.unreadable:
        unread = "; ".join(f"{k}: {v}" for k, v in role.unreadable.items())
        return Judgement(UNDECIDABLE, f"allowed, but not every policy could be read ({unread})", result.allow)
    return result


def _verdict(outcome: str) -> str:
    return OK if outcome == ALLOWED else UNDECIDABLE if outcome == UNDECIDABLE else BROKEN


# --- a. the node may assume the access role -------------------------------------------------------


def _assume_link(docs: ChainDocuments, external_id: str | None) -> Link:
    claim = f"{_name(docs.node_role_arn)} may call sts:AssumeRole on {docs.access_role_arn}"
    node = docs.node
    if node is None:
        return Link(
            "assume",
            claim,
            BROKEN,
            detail=f"role {_name(docs.node_role_arn)} does not exist",
            fix=f"create {_name(docs.node_role_arn)} in {_account(docs.node_role_arn)} (ATC Manager's node role)",
        )
    ctx, absent = _principal_context(docs, node)
    ctx["aws:SecureTransport"] = True  # STS answers on HTTPS only
    if external_id is not None:
        ctx["sts:ExternalId"] = external_id
    judged = _identity(node, "sts:AssumeRole", docs.access_role_arn, ctx, absent)
    verdict = _verdict(judged.outcome)
    if judged.outcome == IMPLICIT and node.account == _account(docs.access_role_arn):
        # Same account: a trust policy naming the role itself is enough, no identity policy needed.
        trust = judge_trust((docs.access.trust if docs.access else None) or {}, Who(node.arn), external_id)
        if trust.outcome == ALLOWED and any(
            node.arn in _aws_principals(s) for s in _statements(docs.access.trust if docs.access else None)
        ):
            return Link("assume", claim, OK, trust.allow, "same account: the trust policy names the role itself")
    return Link("assume", claim, verdict, judged.statements, judged.reason, _assume_fix(docs, node, judged))


def _assume_fix(docs: ChainDocuments, node: RoleDocs, judged: Judgement) -> str:
    target = docs.access_role_arn
    if judged.outcome == ALLOWED:
        return ""
    if judged.reason.startswith("permissions boundary"):
        boundary = node.boundary[0] if node.boundary else "?"
        return f"let the permissions boundary {boundary} of {node.name} allow sts:AssumeRole on {target}"
    if judged.outcome == DENIED:
        return (
            f"remove or narrow the Deny {', '.join(judged.deny)} on {node.name}: it refuses sts:AssumeRole on {target}"
        )
    if judged.outcome == UNDECIDABLE:
        return f"check by hand that {node.name}'s requests meet the conditions of {', '.join(judged.unknown)}"
    return (
        f"attach {docs.assume_policy_name} (sts:AssumeRole on {target}) to {node.name}: `atc-xaccount register` does it"
    )


# --- b. the trust admits the node with the external ID ---------------------------------------------


def _trust_link(docs: ChainDocuments, external_id: str | None) -> Link:
    access = docs.access
    node_name = _name(docs.node_role_arn)
    claim = f"the trust policy of {_name(docs.access_role_arn)} admits {node_name} with the external ID"
    if access is None:
        return Link(
            "trust",
            claim,
            BROKEN,
            detail=f"role {_name(docs.access_role_arn)} does not exist",
            fix=f"create {_name(docs.access_role_arn)} in {_account(docs.access_role_arn)} with "
            f"{docs.access_policy_name} attached, as the ATC documentation describes",
        )
    if external_id is None:
        return Link(
            "trust",
            claim,
            BROKEN,
            detail="the cluster has no external ID (no secret)",
            fix="register the cluster: `atc-xaccount register EVENT_FILE` stores one and grants it",
        )
    unique_id = docs.node.unique_id if docs.node else None
    who = Who(docs.node_role_arn, unique_id)
    ctx: dict[str, object] = {"aws:PrincipalType": "AssumedRole", "aws:SecureTransport": True}
    absent = set(ABSENT_KEYS)
    node_account = _account(docs.node_role_arn)
    if node_account in docs.organizations:
        org = docs.organizations[node_account]
        if org is None:
            absent.add("aws:principalorgid")
        else:
            ctx["aws:PrincipalOrgID"] = org
    trust = access.trust or {}
    judged = judge_resource_policy(
        "trust",
        trust,
        who,
        "sts:AssumeRole",
        "*",
        context={"sts:ExternalId": external_id, **ctx},
        absent=frozenset(absent),
    )
    if judged.outcome == ALLOWED:
        return Link("trust", claim, OK, judged.allow, judged.reason)
    if judged.outcome == DENIED:
        return Link(
            "trust",
            claim,
            BROKEN,
            judged.deny,
            judged.reason,
            f"remove or narrow the trust policy's Deny {', '.join(judged.deny)} of {access.name}: "
            f"it refuses {node_name}",
        )
    if judged.outcome == UNDECIDABLE:
        return Link(
            "trust",
            claim,
            UNDECIDABLE,
            judged.statements,
            judged.reason,
            f"check by hand that Cluster Manager's AssumeRole meets the conditions of {', '.join(judged.unknown)}",
        )
    stale = _stale_grant(trust, docs.node_role_arn, external_id, unique_id)
    if stale is not None:
        label, old_id = stale
        current = f" (the current {node_name} is {unique_id})" if unique_id else ""
        return Link(
            "trust",
            claim,
            BROKEN,
            (label,),
            f"the grant {label} names unique ID {old_id}: {node_name} was deleted and recreated{current}",
            f"re-grant the current {node_name}: `atc-xaccount register EVENT_FILE` (or the audit with --repair) "
            f"replaces the stale {old_id} grant",
        )
    return Link(
        "trust",
        claim,
        BROKEN,
        judged.unknown_deny,
        judged.reason,
        f"grant {node_name} with this external ID in the trust policy of {access.name}: "
        "`atc-xaccount register EVENT_FILE`",
    )


def _stale_grant(
    trust: dict[str, Any], node_arn: str, external_id: str, unique_id: str | None
) -> tuple[str, str] | None:
    """An Allow that would admit the node with this external ID if it were the role whose unique ID it names."""
    for index, stmt in enumerate(_statements(trust)):
        if stmt.get("Effect") != "Allow":
            continue
        for entry in _aws_principals(stmt):
            if entry.startswith("AROA") and entry != unique_id:
                judged = judge_trust({"Statement": [stmt]}, Who(node_arn, entry), external_id)
                if judged.outcome == ALLOWED:
                    return str(stmt.get("Sid") or f"trust#{index}"), entry
    return None


# --- c, d, e. per bucket ---------------------------------------------------------------------------


def _bucket_links(
    docs: ChainDocuments, access: RoleDocs, bucket: BucketDocs, prefix: str, region: str, secure: bool | None
) -> list[Link]:
    partition = split_arn(access.arn)[0]
    bucket_arn = f"arn:{partition}:s3:::{bucket.name}"
    wanted = [(a, bucket_arn) for a in BUCKET_ACTIONS] + [(a, f"{bucket_arn}/{prefix}*") for a in OBJECT_ACTIONS]
    ctx, absent = _principal_context(docs, access)
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
        judged = _identity(access, action, resource, ctx, absent)
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
        "bucket policy", bucket.policy, _who(access), action, resource, context=ctx, account_counts=False, absent=absent
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
            "bucket policy", bucket.policy, _who(access), action, resource, context=ctx, absent=absent
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
            for label, actions in denied.items()
        )
        sids = ", ".join(label.split(":", 1)[-1] for label in statements)
        fix = (
            f"the bucket policy's statement {sids} denies {access.arn}: exempt the role "
            f"(e.g. an aws:PrincipalArn condition) or narrow the Deny"
            f"{_condition_note(docs, access, bucket.policy, statements[0])}"
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


def _statement_by_label(policy: dict[str, Any], label: str) -> dict[str, Any] | None:
    tail = label.split(":", 1)[-1] if ":" in label else None
    for index, stmt in enumerate(_statements(policy)):
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
            "key policy", key.policy or {}, _who(access), action, key.arn, context=kms_ctx, absent=absent
        )
        direct = judge_resource_policy(
            "key policy",
            key.policy or {},
            _who(access),
            action,
            key.arn,
            context=kms_ctx,
            account_counts=False,
            absent=absent,
        )
        by_iam = _identity(access, action, key.arn, kms_ctx, absent)
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


# --- f. session duration ---------------------------------------------------------------------------


def _session_link(docs: ChainDocuments, requested: int) -> Link:
    claim = (
        f"MaxSessionDuration of {_name(docs.access_role_arn)} covers the {requested} s session Cluster Manager asks for"
    )
    access = docs.access
    if access is None:
        return Link("session", claim, BROKEN, detail="the access role does not exist")
    if access.max_session_duration is None:
        return Link(
            "session",
            claim,
            UNDECIDABLE,
            detail="MaxSessionDuration was not read",
            fix=f"check `aws iam get-role --role-name {access.name}`",
        )
    if access.max_session_duration >= requested:
        return Link("session", claim, OK, detail=f"MaxSessionDuration {access.max_session_duration} s")
    return Link(
        "session",
        claim,
        BROKEN,
        detail=f"MaxSessionDuration {access.max_session_duration} s < {requested} s",
        fix=f"aws iam update-role --role-name {access.name} --max-session-duration {requested}",
    )


# --- helpers ---------------------------------------------------------------------------------------


def _statements(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    from atc_xaccount.documents import statements

    return statements(doc)


def _aws_principals(stmt: dict[str, Any]) -> list[str]:
    from atc_xaccount.documents import as_list

    principal = stmt.get("Principal")
    if not isinstance(principal, dict):
        return []
    return [str(p) for p in as_list(principal.get("AWS"))]


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _account(arn: str) -> str:
    return split_arn(arn)[3]
