"""The contention benchmark (bench/contention.py) runs on today's code: a small burst on a
fast clock ends Ready, and its figures are on the dilated clock's scale."""

from __future__ import annotations

from pathlib import Path

from bench import contention

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_burst_on_the_dilated_clock_ends_ready_and_reports_aws_seconds() -> None:
    result = contention.measure(ROOT, 3, s3_accounts=1, dilation=0.2)

    assert (result["ready"], result["failed"], result["resource_locked_failures"]) == (3, 0, 0), result["errors"]
    # The 10 s wait ran 2 s of wall time and counts as 10 s of AWS's time.
    assert result["wall_seconds"] >= 2 and result["seconds_to_last_ready"] >= 10
    assert abs(result["seconds_to_last_ready"] - result["wall_seconds"] / 0.2) < 1  # both rounded
    assert result["documents_changed"] == 3 and result["iam_writes"] >= 3
    assert all(v is not None for k, v in contention.targets({"burst_one_cm": result}).items() if "burst" in k)
