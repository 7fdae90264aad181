"""IAM quotas and attachment counts the emulator keeps as IAM does (moto 5.2.5 does not).

- `AttachedPoliciesPerRoleQuota` (10 managed policies per role by default, raisable):
  moto reports it in GetAccountSummary and never enforces it. IAM refuses the
  AttachRolePolicy that would pass it with `LimitExceeded` (HTTP 409) "Cannot exceed quota
  for PoliciesPerRole: 10". The emulator does, with the account summary's value (a world
  sets it under `quotas`).
- Attaching a policy that is already attached is a no-op in IAM. moto counts it again: the
  policy's `AttachmentCount` grows past the roles it is attached to, which every
  "is anyone else attached?" decision reads. The emulator leaves it as IAM does.

Quotas set per account with `set_quota` (moto has no Service Quotas).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.iam.exceptions import LimitExceededException
from moto.iam.models import IAMBackend, iam_backends

#: World `quotas` keys -> moto's account summary attribute, and the range an account can have.
QUOTAS: dict[str, tuple[str, int, int]] = {
    # ACLSizePerRole: 2,048 by default, raisable to 4,096 (10,240 is the hard ceiling moto knows).
    "AssumeRolePolicySizeQuota": ("_assume_role_policy_size_quota", 2048, 10240),
    # Managed policies per role (L-0DA4ABF3): 10 by default, raisable (to 20; 25 allowed here).
    "AttachedPoliciesPerRoleQuota": ("_attached_policies_per_role_quota", 10, 25),
}


def set_quota(account: str, partition: str, name: str, value: int) -> None:
    """The value GetAccountSummary reports for `name` in `account` (and the emulator enforces)."""
    attribute = QUOTAS[name][0]
    setattr(iam_backends[account][partition].account_summary, attribute, value)


def _policies_per_role(backend: IAMBackend) -> int:
    return int(backend.account_summary._attached_policies_per_role_quota)


@contextmanager
def enforced() -> Iterator[None]:
    """Patch moto's AttachRolePolicy for the emulator's lifetime."""
    original = IAMBackend.attach_role_policy

    def attach_role_policy(backend: IAMBackend, policy_arn: str, role_name: str) -> Any:
        role = backend.get_role(role_name)
        if policy_arn not in {p.arn for p in backend.managed_policies.values()}:
            return original(backend, policy_arn, role_name)  # NoSuchEntity, as IAM answers first
        if policy_arn in role.managed_policies:
            return None  # already attached: IAM changes nothing (and counts nothing)
        quota = _policies_per_role(backend)
        if len(role.managed_policies) >= quota:
            raise LimitExceededException(f"Cannot exceed quota for PoliciesPerRole: {quota}")
        return original(backend, policy_arn, role_name)

    IAMBackend.attach_role_policy = attach_role_policy  # type: ignore[method-assign]
    try:
        yield
    finally:
        IAMBackend.attach_role_policy = original  # type: ignore[method-assign]
