"""`atc-xaccount local doctor`: the access chain of a cluster, checked on the emulator.

The world is seeded as for `local run`; the doctor then reads it exactly as it reads AWS:
as the world's operator (`operator.principalArn`, or the emulator's default operator),
through the read-only operator role of each account (bootstrap OperatorRoleName, which
trusts only OperatorPrincipalArns: the emulator judges the AssumeRole by that trust policy
and every read by the role's policies, `trust_judge.py`, `authz.py`), and the chain is
judged by the same evaluator. The world's `organizationId` of an account is what AWS
Organizations would answer for it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from atc_xaccount.steps.context import StepContext
from atc_xaccount_cli.doctor import DoctorOptions, doctor
from atc_xaccount_cli.errors import UsageError
from atc_xaccount_cli.local.engine import Emulator
from atc_xaccount_cli.local.world import WorldError


def world_organizations(world: dict[str, Any]) -> dict[str, str | None]:
    """Accounts whose organization the world states (the others stay unknown)."""
    return {a: s["organizationId"] for a, s in world["accounts"].items() if "organizationId" in s}


def run_doctor(
    root: Path,
    cluster_id: str | None,
    world: dict[str, Any],
    *,
    event: dict[str, Any] | None = None,
    options: DoctorOptions | None = None,
    parameters: dict[str, str] | None = None,
    verbose: bool = False,
) -> tuple[int, dict[str, Any]]:
    options = options or DoctorOptions()
    # The world says what Organizations answers; --org overrides it account by account.
    organizations = {**world_organizations(world), **options.organizations}
    options = replace(options, organizations=organizations)
    with Emulator(root, parameters=parameters, verbose=verbose) as emulator:
        try:
            emulator.seed(world)
        except WorldError as exc:
            raise UsageError(f"world file: {exc}") from exc
        return doctor(operator_context(emulator, world, "local-doctor"), cluster_id, event, options)


def operator_context(emulator: Emulator, world: dict[str, Any], execution: str) -> StepContext:
    """The steps' context as an operator has it: the operator's own credentials in the automation
    account, the read-only operator role in the target accounts (operators read, workflows write)."""
    from atc_xaccount.sessions import AccountSessions

    ctx = StepContext.from_env(os.environ, execution)
    sessions = AccountSessions(
        automation_role_name=emulator.operator_role_name,
        writer_role_name=ctx.sessions.automation_role_name,
        partition=ctx.partition,
        region=ctx.sessions.region,
        execution=execution,
        base_session=emulator.operator_session(world),
    )
    return replace(ctx, sessions=sessions)
