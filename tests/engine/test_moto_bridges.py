"""The emulator's bridges over moto (local/moto_gaps.py) keep AWS's atomicity under the
concurrency the emulator really has: executions run in threads."""

from __future__ import annotations

import threading
from typing import Any

from moto import mock_aws
from moto.secretsmanager.models import secretsmanager_backends

from atc_xaccount_cli.local.moto_gaps import bridged

ACCOUNT, REGION = "123456789012", "us-east-1"
ALLOW_NOTHING = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"*"}]}'


def create(backend: Any, name: str) -> None:
    backend.create_secret(
        name=name,
        secret_string="x",
        secret_binary=None,
        description=None,
        tags=None,
        kms_key_id=None,
        client_request_token=None,
        replica_regions=[],
        force_overwrite=False,
    )


def test_secret_reads_survive_other_executions_creating_secrets() -> None:
    """Twenty registrations at once each create their cluster's secret while the others read
    theirs; moto scans its store for a lookup and broke with "dictionary changed size during
    iteration" inside a step, failing the execution."""
    errors: list[BaseException] = []
    with mock_aws(), bridged():
        backend = secretsmanager_backends[ACCOUNT][REGION]
        latest = ["cluster-0"]
        create(backend, latest[0])
        created = threading.Event()

        def writer() -> None:
            for i in range(1, 2000):
                create(backend, f"cluster-{i}")
                latest[0] = f"cluster-{i}"
            created.set()

        def reader() -> None:
            while not created.is_set():
                try:
                    backend.describe_secret(latest[0])  # found at the end of the scan
                except RuntimeError as error:  # the race this bridge removes
                    errors.append(error)
                    return

        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_iam_listings_survive_other_executions_attaching_policies() -> None:
    """One execution's Preflight lists the node role's attached policies while another's
    commit attaches the assume policy to it: moto iterates the role's dict of policies while
    the other request inserts into it ("dictionary changed size during iteration", a failed
    onboarding in a burst under load). Each request runs whole, as on AWS. Threads switch
    every microsecond here so that the interleaving shows at once."""
    import sys

    import boto3

    errors: list[BaseException] = []
    interval = sys.getswitchinterval()
    with mock_aws(), bridged():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_role(RoleName="atc-node", AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}')
        arns = [
            iam.create_policy(PolicyName=f"p-{i}", PolicyDocument=ALLOW_NOTHING)["Policy"]["Arn"] for i in range(400)
        ]
        done = threading.Event()

        def writer() -> None:
            for _ in range(2):
                for arn in arns:
                    iam.attach_role_policy(RoleName="atc-node", PolicyArn=arn)
                for arn in arns:
                    iam.detach_role_policy(RoleName="atc-node", PolicyArn=arn)
            done.set()

        def reader() -> None:
            for _ in range(2000):  # bounded: Python's locks are not fair, a tight loop could starve the writer
                if done.is_set():
                    return
                try:
                    iam.list_attached_role_policies(RoleName="atc-node")
                except RuntimeError as error:  # the race this bridge removes
                    errors.append(error)
                    return

        threads = [threading.Thread(target=writer), *(threading.Thread(target=reader) for _ in range(2))]
        sys.setswitchinterval(1e-6)
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
    assert errors == []
