"""Conventions of a well-kept CLI: --version, help that lists what the code knows, quiet on a
closed pipe, and configuration errors that say what to do (region, credentials, stack)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from atc_xaccount_cli.aws.deployment import default_stack
from atc_xaccount_cli.exitcodes import Exit
from atc_xaccount_cli.local.faults import KINDS
from atc_xaccount_cli.main import main
from tests.cli.conftest import ROOT

SCRIPT = Path(sys.executable).parent / "atc-xaccount"


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    assert cli("--version") == (0, f"atc-xaccount {version('atc-xaccount')}\n")


def test_local_run_help_lists_every_fault_kind():
    code, text = cli("local", "run", "--help")
    assert code == 0
    flat = " ".join(text.split())
    for kind in KINDS:
        assert kind in flat, kind


def test_a_closed_pipe_ends_quietly():
    """`atc-xaccount ... | head`: the reader goes away; no BrokenPipeError traceback, exit 141."""
    process = subprocess.Popen([str(SCRIPT), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the script writes: every write fails with EPIPE
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == Exit.PIPE
    assert err == ""


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_in_process_is_exit_141(capsys):
    assert main(["--help"], out=ClosedPipe()) == Exit.PIPE
    assert capsys.readouterr().err == ""


@pytest.fixture
def bare_environment(monkeypatch, tmp_path):
    """No AWS configuration at all: no variables, no ~/.aws files, no instance metadata."""
    for name in [k for k in __import__("os").environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("ATC_XACCOUNT_STACK", raising=False)
    return monkeypatch


def test_no_region_says_how_to_give_one(bare_environment, capsys):
    code, _ = cli("show", "demo-cluster-1")
    assert code == Exit.USAGE
    assert capsys.readouterr().err == (
        "atc-xaccount: no region: pass --region or set AWS_REGION (samconfig.toml deploys to us-east-1)\n"
    )


def test_no_credentials_says_what_to_do_not_aws_refused(bare_environment, capsys):
    bare_environment.setenv("AWS_REGION", "eu-west-1")
    code, _ = cli("show", "demo-cluster-1")
    assert code == Exit.USAGE
    err = capsys.readouterr().err
    assert err.startswith("atc-xaccount: no credentials: set AWS_PROFILE or run `aws sso login`")
    assert "AWS refused" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["register", "events/cluster-registered.json"],
        ["register", "--from-file", "events/bulk-registrations.csv"],
        ["audit"],
    ],
)
def test_without_credentials_the_commands_that_follow_an_execution_print_only_the_error(bare_environment, capsys, argv):
    """No "Execution" heading above the error: no execution was started."""
    bare_environment.setenv("AWS_REGION", "eu-west-1")
    bare_environment.chdir(ROOT)
    code, out = cli(*argv)
    assert code == Exit.USAGE
    assert out == ""
    assert capsys.readouterr().err.startswith("atc-xaccount: no credentials")


def test_an_unknown_profile_is_named(bare_environment, capsys):
    code, _ = cli("show", "demo-cluster-1", "--profile", "nosuch", "--region", "us-east-1")
    assert code == Exit.USAGE
    assert "no AWS profile 'nosuch'" in capsys.readouterr().err


@pytest.fixture
def aws(bare_environment):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        bare_environment.setenv(name, value)
    with mock_aws():
        yield bare_environment


@pytest.mark.parametrize(
    ("environment", "argv", "region"),
    [
        ({"AWS_REGION": "eu-west-1"}, [], "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "eu-central-1"}, [], "eu-central-1"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-central-1"}, [], "eu-west-1"),
        ({"AWS_REGION": "eu-west-1"}, ["--region", "ap-south-1"], "ap-south-1"),
    ],
    ids=["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION-first", "--region-first"],
)
def test_the_region_comes_from_the_option_then_aws_region_then_aws_default_region(
    aws, capsys, environment, argv, region
):
    for name, value in environment.items():
        aws.setenv(name, value)
    code, _ = cli("status", "anything", *argv)
    assert code == Exit.USAGE
    assert f"no atc-xaccount state machines in {region}:" in capsys.readouterr().err


def test_the_stack_defaults_to_the_environment_then_samconfig(monkeypatch):
    monkeypatch.delenv("ATC_XACCOUNT_STACK", raising=False)
    assert default_stack() == "atc-xaccount"  # samconfig.toml's default stack_name
    monkeypatch.setenv("ATC_XACCOUNT_STACK", "atc-xaccount-dev")
    assert default_stack() == "atc-xaccount-dev"


def test_an_explicit_stack_that_does_not_exist_is_named(aws, capsys):
    aws.setenv("AWS_REGION", "us-east-1")
    boto3.client("stepfunctions", region_name="us-east-1")  # the mock is up
    code, _ = cli("show", "demo-cluster-1", "--stack", "nosuch")
    assert code == Exit.USAGE
    assert capsys.readouterr().err.startswith("atc-xaccount: stack nosuch not found in us-east-1: pass --stack NAME")


def test_an_answer_that_is_not_aws_is_named_not_a_traceback():
    """An endpoint that answers an HTML error page (a proxy, a broken emulator): botocore's
    ResponseParserError is no BotoCoreError, and escaped as a traceback."""
    from botocore.parsers import ResponseParserError

    from atc_xaccount_cli.aws.session import translated
    from atc_xaccount_cli.errors import AwsRefused

    with pytest.raises(AwsRefused, match=r"^the endpoint's answer is not an AWS response: Unable to parse"):
        with translated():
            raise ResponseParserError("Unable to parse response (syntax error), invalid XML received:\nb'<html>'")
