"""Load: our window replacement against raw COPY and pandas ``to_sql``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import Table

CASE_LABELS = {
    "raw_copy": "raw COPY into empty copy of cost_data (baseline)",
    "raw_copy_csv": "raw COPY, rows sent as Arrow-written CSV (the loader's feed)",
    "pandas_to_sql": "pandas to_sql (default method)",
    "ours_first": "replace_cost_window, first load (empty window)",
    "ours_unchanged": "replace_cost_window, unchanged re-load",
    "ours_restated_tail": "replace_cost_window, last 10% of days restated",
    "ours_restated_10pct": "replace_cost_window, 10% restated re-load",
    "main_unchanged": "before: main's loader and Decimal frame, unchanged re-load",
    "main_restated_10pct": "before: main's loader and Decimal frame, 10% restated re-load",
}

#: The issue's goals, as ratios to raw COPY rows/s.
GOALS = {
    "ours_unchanged": ">= 1.0",
    "ours_restated_tail": ">= 0.8",
    "ours_restated_10pct": ">= 0.5",
}


def _case(case: str, rows: int, url: str) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.load_case", case, str(rows), url],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load case {case} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_load(url: str, sizes: tuple[int, ...], progress: object = print) -> Table:
    """Each case in its own process; rows/s and peak RSS, against raw COPY in the same run."""
    table = Table(
        "Load: rows/s and peak RSS, ratio to raw COPY measured in the same run",
        [
            "rows",
            "case",
            "seconds",
            "rows/s",
            "x raw COPY",
            "goal",
            "x CSV COPY",
            "rows changed",
            "dead tuples",
            "peak RSS MB",
            "RSS over frame MB",
        ],
    )
    for rows in sizes:
        frame = _case("frame_only", rows, url)
        baseline = _case("raw_copy", rows, url)
        results = {"raw_copy": baseline}
        for case in list(CASE_LABELS)[1:]:
            results[case] = _case(case, rows, url)
            progress(f"  load {rows:,} {case}: {results[case]['seconds']:.2f} s")  # type: ignore[operator]
        base_rate = rows / baseline["seconds"]
        csv_rate = rows / results["raw_copy_csv"]["seconds"]
        for case, label in CASE_LABELS.items():
            result = results[case]
            rate = rows / result["seconds"]
            table.rows.append(
                [
                    rows,
                    label,
                    round(result["seconds"], 2),
                    int(rate),
                    round(rate / base_rate, 2),
                    GOALS.get(case, ""),
                    round(rate / csv_rate, 2),
                    result.get("rows_changed", ""),
                    result.get("dead_tuples", ""),
                    round(result["peak_rss_mb"]),
                    round(result["peak_rss_mb"] - frame["peak_rss_mb"]),
                ]
            )
    table.notes.append(
        "Each case runs in its own process on a fresh table; RSS over frame subtracts a process "
        "that only builds the same DataFrame. Rows/s is the window's rows over the load's "
        "seconds. x raw COPY is the issue's baseline (psycopg write_row per row); x CSV COPY "
        "compares with a raw COPY fed the way the loader now feeds it. Dead tuples: n_dead_tup of cost_data after the load (VACUUMed before it)."
    )
    return table
