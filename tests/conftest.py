"""Fixtures shared by every test folder.

The emulator's run-independent set-up (ASL parse trees, botocore service models, the
parsed SAM and bootstrap templates) is cached for the whole session: see
`atc_xaccount_cli.local.speedups`. Every test still gets its own emulated AWS.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from atc_xaccount_cli.local import speedups

REGION = "us-east-1"

# At import, before any test module builds an emulator or a client (also in each xdist worker).
speedups.enable()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh emulated AWS per test; plain credentials are the automation account's."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield
