"""What the README says that is not a command: its first screen, its figures, its links; and the
walk's own conventions (tests/readme/walk.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from atc_xaccount_cli.exitcodes import MEANING
from bench import headline
from tests.readme.walk import Step, WalkError, steps

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FIRST_SCREEN = "\n".join(README.splitlines()[:45])


def test_the_first_screen_says_what_it_does_the_two_commands_and_how_to_call_the_cli():
    assert "Cross-account S3 access for **IBM Aspera Transfer Cluster (ATC)** nodes" in FIRST_SCREEN
    assert "make run " in FIRST_SCREEN and "make test " in FIRST_SCREEN
    assert "local run" in FIRST_SCREEN, "the main job"
    assert ".venv/bin/atc-xaccount" in FIRST_SCREEN and ". .venv/bin/activate" in FIRST_SCREEN


def test_the_cli_is_put_on_the_path_before_any_command_uses_it():
    walked = [s for s in steps(README) if s.kind == "run"]
    activate = next(i for i, s in enumerate(walked) if s.argv[:2] == (".", ".venv/bin/activate"))
    first_cli = next(i for i, s in enumerate(walked) if s.argv[0] == "atc-xaccount")
    assert activate < first_cli


def test_the_benchmark_table_is_bench_results_json():
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    assert headline.between(README) == headline.block(results), "run `python -m bench.headline --write`"
    bench_readme = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    assert headline.between(bench_readme, headline.BULK_BEGIN, headline.BULK_END) == headline.bulk_block(results)


def test_the_exit_status_table_is_the_codes_table():
    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `(\d+)` \| (.+) \|$", cli, re.MULTILINE))
    assert documented == {str(int(code)): text for code, text in MEANING.items()}


def test_every_docs_page_is_linked_and_every_link_resolves():
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", README))
    assert linked == {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([\w.-]+\.md)\)", page.read_text(encoding="utf-8")):
            assert (ROOT / "docs" / target).exists(), (page.name, target)


def test_each_sample_event_has_its_own_event_id():
    ids = {}
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        if "detail" in event:
            assert event["id"] not in ids, f"{path.name} reuses the event id of {ids.get(event['id'])}"
            ids[event["id"]] = path.name
    assert len(ids) >= 3


# --- the walk's conventions ---------------------------------------------------------------------

SAMPLE = """
<!-- walk: skip needs AWS -->
```sh
aws sts get-caller-identity
```

```sh
atc-xaccount local run a.json \\
  --world w.json     # exit 1: why
# a comment line
```

```text
not a command
```

<!-- walk: serve -->
```sh
atc-xaccount local serve
```
<!-- walk: stop -->
"""


def test_the_walk_reads_blocks_markers_continuations_and_exit_codes():
    assert steps(SAMPLE) == [
        Step("run", ("atc-xaccount", "local", "run", "a.json", "--world", "w.json"), 1, 8,
             "atc-xaccount local run a.json  --world w.json     # exit 1: why"),
        Step("serve", ("atc-xaccount", "local", "serve"), 0, 19, "atc-xaccount local serve"),
        Step("stop", (), 0, 21, "<!-- walk: stop -->"),
    ]  # fmt: skip


def test_an_unclosed_block_is_named():
    with pytest.raises(WalkError, match=r"README.md:2: code block never closed"):
        steps("\n```sh\nls\n")


def test_an_output_block_matches_what_was_printed_not_what_was_once_printed():
    """`<!-- walk: output -->` holds the README's sample reports to the command's real output:
    `…` stands for the rest of a line, execution names and key ids vary, figures do not."""
    from tests.readme.walk import missing_lines

    printed = (
        "SUCCEEDED  (x; execution local-0123456789ab, 11 states)\nAWS calls by the steps: 32 (11 writes: a x1, b x2)\n"
    )
    assert (
        missing_lines(
            "SUCCEEDED  (x; execution local-05ad2a082bd4, 11 states)\nAWS calls by the steps: 32 (11 writes: a x1, …)",
            printed,
        )
        == []
    )
    assert missing_lines("AWS calls by the steps: 25 (8 writes: a x1, …)", printed) == [
        "AWS calls by the steps: 25 (8 writes: a x1, …)"
    ]
