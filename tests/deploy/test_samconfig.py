"""samconfig.toml's environments deploy what template.yaml accepts.

A misspelled parameter or a value outside AllowedValues/AllowedPattern would only show
up as a failed `sam deploy`; a stack name too long for the bootstrap role's trust would
only show up as AccessDenied in the target accounts.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest

from atc_xaccount_cli.local.template import load_yaml
from tests.deploy.conftest import ROOT

ENVIRONMENTS = {"default": "atc-xaccount", "dev": "atc-xaccount-dev", "prod": "atc-xaccount-prod"}


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def overrides(deploy: dict[str, Any]) -> dict[str, str]:
    """parameter_overrides as SAM CLI reads the string form: Key=Value, shell-quoted."""
    return dict(item.split("=", 1) for item in shlex.split(deploy.get("parameter_overrides", "")))


@pytest.mark.parametrize(("env", "stack"), ENVIRONMENTS.items())
def test_each_environment_has_its_own_stack(samconfig, env, stack):
    assert samconfig[env]["global"]["parameters"]["stack_name"] == stack
    deploy = samconfig[env]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert samconfig[env]["validate"]["parameters"]["lint"] is True


def test_prod_confirms_every_changeset_and_both_environments_are_tagged(samconfig):
    assert samconfig["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    for env in ("dev", "prod"):
        tags = dict(item.split("=", 1) for item in shlex.split(samconfig[env]["deploy"]["parameters"]["tags"]))
        assert tags == {"project": "atc-xaccount", "environment": env}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_parameter_overrides_are_parameters_the_template_accepts(samconfig, env):
    parameters = load_yaml(ROOT / "template.yaml")["Parameters"]
    given = overrides(samconfig[env]["deploy"]["parameters"])
    assert {"LogLevel", "RepairDrift"} <= set(given)
    for name, value in given.items():
        assert name in parameters, f"{env}: {name} is not a template parameter"
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (env, name, value)
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), (env, name, value)


def test_stack_names_fit_the_bootstrap_roles_trust(samconfig):
    """The automation role trusts step roles named <stack>-*; its parameter bounds the name."""
    bootstraps = sorted((ROOT / "bootstrap").glob("*.yaml"))
    patterns = [
        spec["AllowedPattern"]
        for path in bootstraps
        for name, spec in (load_yaml(path).get("Parameters") or {}).items()
        if name == "AutomationStackName" and "AllowedPattern" in spec
    ]
    assert patterns, "bootstrap/automation-role.yaml must bound AutomationStackName"
    for env in ENVIRONMENTS:
        stack = samconfig[env]["global"]["parameters"]["stack_name"]
        assert all(re.fullmatch(p, stack) for p in patterns), (env, stack)
