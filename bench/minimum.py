"""The fewest AWS API calls a correct onboarding can make, derived call by call.

"Correct" is what the workflow promises (DESIGN 1, 4): prerequisites proven before the
first write, the trust policy merged (so it must be read) and never replaced, writes only
where something differs, the external ID kept in Secrets Manager so a re-delivered event
reuses it. Counted as the emulator counts (`atc_xaccount_cli.local.dispatch`): every call
a step makes, `sts:AssumeRole` as a read, `Get*`/`List*` as reads, anything else a write;
the state machine's own integrations (events:PutEvents) are not step calls on either side.

When the event names `buckets`, reading the access policy that must grant them is part of
the job (DESIGN 3.1: they are what verification checks): +2 reads on either run.

Not counted, on purpose: reading back what a successful write just returned (the write's
success is the proof), and `iam:GetAccountAuthorizationDetails`, which could fold several
reads into one but returns every role and policy of the account, page after page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atc_xaccount.documents import non_whitespace_size
from atc_xaccount.extid import MIN_GENERATED_LENGTH
from atc_xaccount.trust import merge_trust_grant

#: The trust-policy quota every account has at least (it can only be raised).
DEFAULT_TRUST_POLICY_SIZE_QUOTA = 2048

#: Length of a generated external ID (atc_xaccount.extid.generate_external_id default).
GENERATED_ID_LENGTH = MIN_GENERATED_LENGTH


@dataclass(frozen=True)
class Call:
    operation: str
    write: bool
    why: str


def _role(world: dict[str, Any], account: str, name: str) -> dict[str, Any] | None:
    return ((world["accounts"].get(account) or {}).get("roles") or {}).get(name)


def first_run(world: dict[str, Any], detail: dict[str, Any]) -> list[Call]:
    """Minimum for the first onboarding of the cluster `detail` names, on `world`."""
    cm, s3 = detail["clusterManagerAccountId"], detail["s3AccountId"]
    node = detail.get("nodeRoleName", "atc-node")
    access = detail.get("accessRoleName", "atc-s3-access-keys")
    policy_name = detail.get("assumePolicyName", "atc-s3-assume-role")
    policy = ((world["accounts"].get(cm) or {}).get("policies") or {}).get(policy_name)
    calls = [Call("sts:AssumeRole", False, f"credentials in the cluster manager account {cm}")]
    if s3 != cm:
        calls.append(Call("sts:AssumeRole", False, f"credentials in the S3 account {s3}"))
    calls.append(
        Call("secretsmanager:GetSecretValue", False, "is an external ID already stored for this cluster? (not found)")
    )
    if policy is None:
        calls += [
            Call("iam:GetRole", False, f"{node} exists (prerequisite, before any write)"),
            Call("iam:GetPolicy", False, f"{policy_name} exists? NoSuchEntity, so it is not attached either"),
        ]
    else:
        calls += [
            Call("iam:ListAttachedRolePolicies", False, f"{node} exists and whether {policy_name} is attached"),
            Call("iam:GetPolicy", False, f"{policy_name} default version id"),
            Call("iam:GetPolicyVersion", False, f"{policy_name} document: does it name the access role?"),
        ]
    calls += [
        Call("iam:GetRole", False, f"{access} exists, and its trust policy to merge into"),
        Call("iam:ListAttachedRolePolicies", False, f"atc-s3-policy is attached to {access} (prerequisite)"),
    ]
    calls += _bucket_reads(detail)
    role = _role(world, s3, access)
    if role is not None:
        merged, _ = merge_trust_grant(
            role["trust"], f"arn:aws:iam::{cm}:role/{node}", detail.get("externalId") or "x" * GENERATED_ID_LENGTH
        )
        if non_whitespace_size(merged) > DEFAULT_TRUST_POLICY_SIZE_QUOTA:
            calls.append(Call("iam:GetAccountSummary", False, "merged trust > 2,048: read the account's raised quota"))
    calls += [
        Call("secretsmanager:CreateSecret", True, "store the generated external ID"),
        Call(
            "iam:CreatePolicy" if policy is None else "iam:CreatePolicyVersion",
            True,
            f"{policy_name} allowing sts:AssumeRole on the access role ARN",
        ),
        Call("iam:AttachRolePolicy", True, f"attach {policy_name} to {node}"),
        Call("iam:UpdateAssumeRolePolicy", True, f"write the merged trust policy of {access}"),
    ]
    return calls


def _bucket_reads(detail: dict[str, Any]) -> list[Call]:
    """The event names buckets: the access policy must be read to know it grants them.

    DESIGN 3.1: `buckets` are what the verify step (and the proof of access) check. Its
    ARN is known from the prerequisite read (`ListAttachedRolePolicies`) or, on a re-run,
    from its name; IAM has no call that returns a managed policy's document in one go.
    """
    if not detail.get("buckets"):
        return []
    name = detail.get("accessPolicyName", "atc-s3-policy")
    return [
        Call("iam:GetPolicy", False, f"{name} default version id (the event names buckets)"),
        Call("iam:GetPolicyVersion", False, f"{name} document: does it grant each bucket the event names?"),
    ]


def rerun(detail: dict[str, Any]) -> list[Call]:
    """Minimum for the same event once everything is in place: the reads that prove it."""
    cm, s3 = detail["clusterManagerAccountId"], detail["s3AccountId"]
    node = detail.get("nodeRoleName", "atc-node")
    access = detail.get("accessRoleName", "atc-s3-access-keys")
    policy_name = detail.get("assumePolicyName", "atc-s3-assume-role")
    calls = [Call("sts:AssumeRole", False, f"credentials in the cluster manager account {cm}")]
    if s3 != cm:
        calls.append(Call("sts:AssumeRole", False, f"credentials in the S3 account {s3}"))
    return [
        *calls,
        Call("secretsmanager:GetSecretValue", False, "the cluster's stored external ID"),
        Call("iam:GetPolicy", False, f"{policy_name} default version id"),
        Call("iam:GetPolicyVersion", False, f"{policy_name} document names the access role"),
        Call("iam:ListAttachedRolePolicies", False, f"{node} exists and has {policy_name} attached"),
        Call("iam:GetRole", False, f"{access} trust policy already grants the node role this external ID"),
        *_bucket_reads(detail),
    ]


def summary(calls: list[Call]) -> dict[str, Any]:
    writes = [c for c in calls if c.write]
    return {
        "total": len(calls),
        "reads": len(calls) - len(writes),
        "writes": len(writes),
        "iam_writes": sum(c.operation.startswith("iam:") for c in writes),
        "calls": [{"operation": c.operation, "write": c.write, "why": c.why} for c in calls],
    }
