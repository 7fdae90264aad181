"""functions/Makefile builds exactly the functions template.yaml has (sam build runs its targets)."""

from __future__ import annotations

import re
from pathlib import Path

from atc_xaccount_cli.local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_makefile_lists_exactly_the_templates_functions():
    makefile = (ROOT / "functions" / "Makefile").read_text()
    listed = re.search(r"^FUNCTIONS = \\\n((?:\t\w+(?: \\)?\n)+)", makefile, re.MULTILINE)
    assert listed, "FUNCTIONS = \\ followed by one function per line"
    names = re.findall(r"\t(\w+)", listed.group(1))
    resources = load_yaml(ROOT / "template.yaml")["Resources"]
    built = [k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"]
    assert sorted(names) == sorted(built)
    assert all(resources[k]["Metadata"] == {"BuildMethod": "makefile", "ContextPath": "functions"} for k in built)
