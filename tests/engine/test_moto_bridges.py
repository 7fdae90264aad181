"""The emulator's bridges over moto (local/moto_gaps.py) keep AWS's atomicity under the
concurrency the emulator really has: executions run in threads."""

from __future__ import annotations

import threading
from typing import Any

from moto import mock_aws
from moto.secretsmanager.models import secretsmanager_backends

from atc_xaccount_cli.local.moto_gaps import bridged

ACCOUNT, REGION = "123456789012", "us-east-1"


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
