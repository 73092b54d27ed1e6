"""The benchmark command at its tiny size, so it cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main

pytestmark = pytest.mark.integration


def test_tiny_benchmarks_run_and_write_their_table(
    server_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FINOPS_BENCH_DATABASE_URL", server_url)
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path / "home"))
    for name in ("GENERATION", "AS_OF", "PAGE_SIZE", "THROTTLE_RATE", "LATENCY_MS"):
        monkeypatch.delenv(f"FINOPS_SANDBOX_{name}", raising=False)

    assert main(["--size", "tiny", "--output", str(tmp_path / "results")]) == 0

    printed = capsys.readouterr().out
    markdown = (tmp_path / "results.md").read_text()
    tables = json.loads((tmp_path / "results.json").read_text())
    assert [table["title"].split(":")[0] for table in tables] == [
        "Load",
        "Paid requests",
        "End to end",
        "Bookkeeping",
        "Runs per day",
        "Collect",
        "Anomalies",
    ]
    for table in tables:
        assert table["title"] in printed
        assert table["title"] in markdown
    load, requests, end_to_end, bookkeeping, schedule, collect, _anomalies = tables
    assert [row[1] for row in bookkeeping["rows"]] == [5, 5, 5]  # 1 account x 5 days, 3 cases
    assert all(row[3] >= row[4] >= 0 for row in bookkeeping["rows"])  # wall >= inside the asset
    one_each, grouped = schedule["rows"]
    assert one_each[2] == 120 and grouped[2] == 3  # 120 accounts: one run each, or 50 a run
    assert {row[1] for row in load["rows"]} >= {
        "raw COPY into empty copy of cost_data (baseline)",
        "pandas to_sql (default method)",
        "replace_cost_window, 10% restated re-load",
    }
    assert all(row[3] > 0 and row[9] > 0 for row in load["rows"])  # rows/s and peak RSS
    for row in load["rows"]:
        if row[7] != "":  # our re-loads: dead tuples no more than the rows they changed
            assert 0 <= row[8] <= row[7], row
    minimum, ranged, per_day = requests["rows"]
    assert ranged[1] == minimum[1]  # the range run needs no more requests than the data
    assert per_day[1] == 5  # one request per day for five days
    baseline, ours = end_to_end["rows"]
    assert baseline[1] == 1 and baseline[4] == 1  # one single-day run, one request
    assert ours[1] == 1 and ours[2] == 3  # one run for 1 account x 3 days
    assert ours[3] > 0
    # One 10k-group AWS window: every case fetched the same 5 pages, and both parsers the same
    # rows; the memory figures are in the printed table (too small here to compare).
    assert [row[1] for row in collect["rows"]] == [5, 5, 5]
    assert [row[2] for row in collect["rows"]] == [0, 10_000, 10_000]
    assert all(row[4] > 0 for row in collect["rows"])
