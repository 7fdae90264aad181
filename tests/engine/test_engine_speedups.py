"""The emulator's caches change no outcome: fresh state per use, errors never cached (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

from atc_xaccount_cli.local import speedups, template

DEFINITION = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"n": 1}, "End": true}}}'


def test_each_parse_builds_fresh_components_from_one_cached_tree() -> None:
    speedups.enable()
    first, first_tree = AmazonStateLanguageParser.parse(DEFINITION)
    second, second_tree = AmazonStateLanguageParser.parse(DEFINITION)
    assert first_tree is second_tree
    assert first is not second  # no execution shares evaluation components with another


def test_a_bad_definition_fails_every_time() -> None:
    speedups.enable()
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": "A", "States": {"A": {"Type": "Nope"}}}')


def test_yaml_documents_are_copies_and_follow_the_files_content(tmp_path: Path) -> None:
    speedups.enable()
    path = tmp_path / "t.yaml"
    path.write_text("Resources:\n  A: {Type: X}\n", encoding="utf-8")
    one, two = template.load_yaml(path), template.load_yaml(path)
    assert one == two == {"Resources": {"A": {"Type": "X"}}}
    one["Resources"]["A"]["Type"] = "changed by a caller"
    assert template.load_yaml(path)["Resources"]["A"]["Type"] == "X"
    path.write_text("Resources:\n  B: !Ref A\n", encoding="utf-8")
    assert template.load_yaml(path) == {"Resources": {"B": {"Ref": "A"}}}
