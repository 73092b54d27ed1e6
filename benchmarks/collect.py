"""Collecting one long AWS window: peak memory of holding its raw pages, against parsing each
page as it arrives.

Each case runs in its own process (``python -m benchmarks.collect CASE GROUPS``), which pages
through GetCostAndUsage answers with the project's own pager and parser and reports its peak
RSS (``VmHWM``, interpreter included) and time:

* ``kept`` (before): :func:`fetch_all_pages` keeps every page, then :func:`parse_cost_pages`
  parses them all, as the AWS collector did;
* ``streamed`` (now): the pager hands each page to a :class:`CostPageParser` and drops it, as
  the collector does now;
* ``baseline``: the pages are fetched and dropped unparsed: what the interpreter, the imports
  and one page in flight cost, measured in the same run.

The answers are built in the shape botocore returns (dicts of fresh strings: two keys, three
cost metrics and the usage quantity per group), 2,500 groups a day and 2,000 groups a page as
the AWS sandbox pages, generated one page at a time when asked for, so the generator holds
nothing the collector does not.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import Table, peak_rss_mb
from finops_pipeline.providers.aws.paging import fetch_all_pages
from finops_pipeline.providers.aws.parsing import CostPageParser, parse_cost_pages

CASES = ("baseline", "kept", "streamed")
GROUPS_PER_DAY = 2_500
GROUPS_PER_PAGE = 2_000
START = dt.date(2025, 11, 1)
_METRICS = ("UnblendedCost", "AmortizedCost", "NetUnblendedCost")


class SyntheticCostExplorer:
    """``get_cost_and_usage`` over ``groups`` generated groups, one page per call."""

    def __init__(self, groups: int) -> None:
        self.groups = groups

    def __call__(self, **request: Any) -> dict[str, Any]:
        offset = int(request.get("NextPageToken") or 0)
        end = min(offset + GROUPS_PER_PAGE, self.groups)
        results: dict[int, list[dict[str, Any]]] = {}
        for index in range(offset, end):
            day_index, slot = divmod(index, GROUPS_PER_DAY)
            cost = f"{(index * 7919) % 100_000 / 1000:.10f}"
            metrics: dict[str, Any] = {m: {"Amount": cost, "Unit": "USD"} for m in _METRICS}
            metrics["UsageQuantity"] = {"Amount": f"{slot}.5", "Unit": "Hrs"}
            results.setdefault(day_index, []).append(
                {"Keys": [f"Service {slot % 40}", f"Usage:{slot}"], "Metrics": metrics}
            )
        page: dict[str, Any] = {
            "ResultsByTime": [
                {
                    "TimePeriod": {
                        "Start": (START + dt.timedelta(days=day)).isoformat(),
                        "End": (START + dt.timedelta(days=day + 1)).isoformat(),
                    },
                    "Total": {},
                    "Groups": groups,
                    "Estimated": False,
                }
                for day, groups in results.items()
            ],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        if end < self.groups:
            page["NextPageToken"] = str(end)
        return page


class _DropPages:
    """A page consumer that keeps nothing: the baseline's pager still sees every page."""

    def add(self, page: dict[str, Any]) -> None:
        pass

    def reset(self) -> None:
        pass


def run_case(case: str, groups: int) -> dict[str, Any]:
    """One case in this process; its peak RSS is the process's."""
    call = SyntheticCostExplorer(groups)
    request = {"Granularity": "DAILY"}
    started = time.perf_counter()
    if case == "kept":
        paged = fetch_all_pages(call, request)
        rows = len(parse_cost_pages(paged.pages).frame)
    elif case == "streamed":
        parser = CostPageParser()
        paged = fetch_all_pages(call, request, consumer=parser)
        rows = len(parser.result().frame)
    elif case == "baseline":
        paged = fetch_all_pages(call, request, consumer=_DropPages())
        rows = 0
    else:
        raise SystemExit(f"unknown case {case}; choose from {', '.join(CASES)}")
    seconds = time.perf_counter() - started
    return {
        "case": case,
        "groups": groups,
        "rows": rows,
        "pages": paged.paid_requests,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_collect(groups: int) -> Table:
    """Every case for ``groups`` groups, each in a fresh process."""
    results = {}
    for case in CASES:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.collect", case, str(groups)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[case] = json.loads(completed.stdout.strip().splitlines()[-1])
    baseline = results["baseline"]["peak_rss_mb"]
    table = Table(
        f"Collect: one AWS window of {groups:,} groups ({groups // GROUPS_PER_DAY} days), "
        "fetch and parse",
        ["case", "pages", "rows", "seconds", "peak RSS MB", "above baseline MB", "× kept"],
    )
    kept_above = results["kept"]["peak_rss_mb"] - baseline
    for case, label in (
        ("baseline", "pages fetched and dropped unparsed (baseline)"),
        ("kept", "before: every raw page kept, then parsed"),
        ("streamed", "now: each page parsed as it arrives"),
    ):
        result = results[case]
        above = result["peak_rss_mb"] - baseline
        table.rows.append(
            [
                label,
                result["pages"],
                result["rows"],
                round(result["seconds"], 2),
                round(result["peak_rss_mb"]),
                round(above),
                round(above / kept_above, 2) if case != "baseline" and kept_above > 0 else "",
            ]
        )
    return table


if __name__ == "__main__":
    print(json.dumps(run_case(sys.argv[1], int(sys.argv[2]))))
