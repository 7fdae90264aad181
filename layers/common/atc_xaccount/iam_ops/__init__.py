"""IAM, the only package of the layer that calls it: reads, policy writes, trust writes.

By concern: `reads` (roles, attachments, policy documents and versions, quotas),
`policy_writes` (the assume policy, its attachment, their undo) and `trust_writes` (the
access role's trust policy). Names are re-exported here, so callers write `iam_ops.X`.
"""

from __future__ import annotations

from atc_xaccount.errors import AwsOperationFailed
from atc_xaccount.iam_ops.policy_writes import (
    attach,
    delete_managed_policy,
    ensure_attached,
    ensure_detached,
    ensure_policy_version_document,
    ignoring_gone,
    restore_policy_version,
    write_managed_policy,
)
from atc_xaccount.iam_ops.reads import (
    DEFAULT_ATTACHED_POLICIES_PER_ROLE_QUOTA,
    DEFAULT_TRUST_POLICY_SIZE_QUOTA,
    MANAGED_POLICY_SIZE_QUOTA,
    MAX_POLICY_VERSIONS,
    PolicyState,
    PolicyVersion,
    attached_policies_per_role_quota,
    attached_policy_arns,
    attached_policy_arns_raw,
    get_policy_state,
    get_role,
    inline_policies,
    policy_versions_raw,
    read_version,
    role_policy,
    trust_policy_size_quota,
    version_reader,
    with_versions,
)
from atc_xaccount.iam_ops.trust_writes import write_trust_policy

__all__ = [
    "DEFAULT_ATTACHED_POLICIES_PER_ROLE_QUOTA",
    "DEFAULT_TRUST_POLICY_SIZE_QUOTA",
    "MANAGED_POLICY_SIZE_QUOTA",
    "MAX_POLICY_VERSIONS",
    "AwsOperationFailed",
    "PolicyState",
    "PolicyVersion",
    "attach",
    "attached_policies_per_role_quota",
    "attached_policy_arns",
    "attached_policy_arns_raw",
    "delete_managed_policy",
    "ensure_attached",
    "ensure_detached",
    "ensure_policy_version_document",
    "get_policy_state",
    "get_role",
    "ignoring_gone",
    "inline_policies",
    "policy_versions_raw",
    "read_version",
    "restore_policy_version",
    "role_policy",
    "trust_policy_size_quota",
    "version_reader",
    "with_versions",
    "write_managed_policy",
    "write_trust_policy",
]
