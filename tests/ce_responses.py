"""Building GetCostAndUsage responses the way Cost Explorer shapes them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from moto.moto_api._internal.models import moto_api_backend

MOTO_ACCOUNT_ID = "123456789012"
COST_METRICS = ("UnblendedCost", "AmortizedCost", "NetUnblendedCost")
TWO_SERVICES = [("Amazon EC2", "BoxUsage:t3.micro"), ("Amazon S3", "TimedStorage-ByteHrs")]


def group(
    service: str,
    usage_type: str,
    cost: str | Decimal,
    *,
    usage: str = "1",
    unit: str = "Hrs",
    currency: str = "USD",
) -> dict[str, Any]:
    metrics: dict[str, Any] = {m: {"Amount": str(cost), "Unit": currency} for m in COST_METRICS}
    metrics["UsageQuantity"] = {"Amount": usage, "Unit": unit}
    return {"Keys": [service, usage_type], "Metrics": metrics}


def day_result(
    day: dt.date, groups: Sequence[dict[str, Any]], *, estimated: bool = False
) -> dict[str, Any]:
    return {
        "TimePeriod": {
            "Start": day.isoformat(),
            "End": (day + dt.timedelta(days=1)).isoformat(),
        },
        "Total": {},
        "Groups": list(groups),
        "Estimated": estimated,
    }


def paginate(
    results: Sequence[dict[str, Any]], *, per_page: int, token_prefix: str = "page"
) -> list[dict[str, Any]]:
    """Split day results into pages chained by NextPageToken, as Cost Explorer does."""
    pages: list[dict[str, Any]] = []
    chunks = [list(results[i : i + per_page]) for i in range(0, len(results), per_page)] or [[]]
    for index, chunk in enumerate(chunks):
        page: dict[str, Any] = {
            "ResultsByTime": chunk,
            "GroupDefinitions": [
                {"Type": "DIMENSION", "Key": "SERVICE"},
                {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
            ],
            "DimensionValueAttributes": [],
        }
        if index < len(chunks) - 1:
            page["NextPageToken"] = f"{token_prefix}-{index + 1}"
        pages.append(page)
    return pages


def queue_moto_pages(pages: Sequence[dict[str, Any]], account_id: str = MOTO_ACCOUNT_ID) -> None:
    """Queue responses in moto's Cost Explorer; each distinct request body takes the next one."""
    for page in pages:
        moto_api_backend.set_ce_cost_usage(result=dict(page), account_id=account_id)


def simple_days(
    start: dt.date, days: int, services: Sequence[tuple[str, str]], *, base: str = "1.25"
) -> list[dict[str, Any]]:
    """Day results with one group per (service, usage type), cost varying by day and group."""
    results = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        groups = [
            group(service, usage_type, Decimal(base) * (offset + 1) + index)
            for index, (service, usage_type) in enumerate(services)
        ]
        results.append(day_result(day, groups))
    return results


def expected_rows(
    start: dt.date, days: int, services: Sequence[tuple[str, str]], *, base: str = "1.25"
) -> list[tuple[dt.date, str, str, Decimal]]:
    """(date, service, usage type, cost) of what :func:`simple_days` returns, by date, service."""
    return sorted(
        (start + dt.timedelta(days=offset), service, usage_type, Decimal(base) * (offset + 1) + i)
        for offset in range(days)
        for i, (service, usage_type) in enumerate(services)
    )


def reset_moto_ce(account_id: str = MOTO_ACCOUNT_ID) -> None:
    """Forget moto's remembered responses, so the same request can get a restated answer."""
    from moto.ce.models import ce_backends

    backend = ce_backends[account_id]["global"]
    backend.cost_usage_results.clear()
    backend.cost_usage_results_queue.clear()


class StrictMotoCostExplorer:
    """moto's GetCostAndUsage, made to check what it is asked, and recording every request.

    moto answers each distinct request body with the next queued page, whatever its
    TimePeriod, GroupBy or NextPageToken, so on its own it would accept an off-by-one End or
    a dropped page token. Installed over moto's handler (so the request has gone through
    botocore's serialisation and signing, and errors go back as HTTP responses that botocore
    parses and retries), this fake refuses, as Cost Explorer would, a request that is not a
    well-formed DAILY query or that sends a token the previous page of the identical query
    did not return, and it records any queued page that could not be Cost Explorer's answer
    to the request: results outside ``[Start, End)`` (End is exclusive), periods that are not
    one day, GroupDefinitions that differ from the GroupBy, metrics other than those asked.
    The fixture fails the test on any such mismatch; tests assert ``requests`` exactly.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mismatches: list[str] = []
        self._issued_tokens: dict[str, set[str]] = {}

    def install(self, monkeypatch: Any) -> StrictMotoCostExplorer:
        from moto.ce.responses import CostExplorerResponse

        original = CostExplorerResponse.get_cost_and_usage
        fake = self

        def get_cost_and_usage(response: CostExplorerResponse) -> str:
            return fake.answer(json.loads(response.body), lambda: original(response))

        monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", get_cost_and_usage)
        return self

    def answer(self, body: dict[str, Any], queued: Any) -> str:
        from moto.core.exceptions import JsonRESTError

        self.requests.append(body)
        invalid = _request_problems(body)
        if invalid:
            self.mismatches.append(f"invalid request {body}: {invalid}")
            raise JsonRESTError("ValidationException", invalid)
        query = json.dumps({k: v for k, v in body.items() if k != "NextPageToken"}, sort_keys=True)
        issued = self._issued_tokens.setdefault(query, set())
        token = body.get("NextPageToken")
        if token is not None and token not in issued:
            self.mismatches.append(f"page token {token!r} was never returned for {query}")
            raise JsonRESTError("InvalidNextTokenException", "The token is invalid.")
        text = queued()
        page = json.loads(text)
        problems = _answer_problems(body, page)
        if problems:
            self.mismatches.append(f"queued page cannot answer {body}: {problems}")
            raise JsonRESTError("ValidationException", f"test fake: {problems}")
        if page.get("NextPageToken"):
            issued.add(page["NextPageToken"])
        return text

    def time_periods(self) -> list[tuple[str, str, str | None]]:
        """(Start, End, NextPageToken) of each request, in order."""
        return [
            (r["TimePeriod"]["Start"], r["TimePeriod"]["End"], r.get("NextPageToken"))
            for r in self.requests
        ]


#: What every GetCostAndUsage request of the pipeline must carry, written out here rather than
#: taken from the code under test.
EXPECTED_GRANULARITY = "DAILY"
EXPECTED_METRICS = ["UnblendedCost", "AmortizedCost", "NetUnblendedCost", "UsageQuantity"]
EXPECTED_GROUP_BY = [
    {"Type": "DIMENSION", "Key": "SERVICE"},
    {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
]


def expected_request(
    start: dt.date, end_inclusive: dt.date, token: str | None = None
) -> dict[str, Any]:
    """The request body Cost Explorer must receive for ``start``..``end_inclusive``."""
    body: dict[str, Any] = {
        "TimePeriod": {
            "Start": start.isoformat(),
            "End": (end_inclusive + dt.timedelta(days=1)).isoformat(),  # exclusive
        },
        "Granularity": EXPECTED_GRANULARITY,
        "Metrics": EXPECTED_METRICS,
        "GroupBy": EXPECTED_GROUP_BY,
    }
    if token is not None:
        body["NextPageToken"] = token
    return body


def _request_problems(body: dict[str, Any]) -> str:
    try:
        start = dt.date.fromisoformat(body["TimePeriod"]["Start"])
        end = dt.date.fromisoformat(body["TimePeriod"]["End"])
    except (KeyError, TypeError, ValueError):
        return "TimePeriod needs Start and End as YYYY-MM-DD"
    if end <= start:
        return f"End {end} must be after Start {start} (End is exclusive)"
    if body.get("Granularity") != EXPECTED_GRANULARITY:
        return f"Granularity {body.get('Granularity')!r} is not DAILY"
    if not body.get("Metrics"):
        return "Metrics is required"
    if len(body.get("GroupBy") or []) > 2:
        return "GroupBy takes at most two entries"
    return ""


def _answer_problems(body: dict[str, Any], page: dict[str, Any]) -> str:
    start = dt.date.fromisoformat(body["TimePeriod"]["Start"])
    end = dt.date.fromisoformat(body["TimePeriod"]["End"])
    problems = []
    results = page.get("ResultsByTime", [])
    group_by = body.get("GroupBy") or []
    if results and (page.get("GroupDefinitions") or []) != group_by:
        problems.append(f"GroupDefinitions {page.get('GroupDefinitions')} != GroupBy {group_by}")
    for result in results:
        day_start = dt.date.fromisoformat(result["TimePeriod"]["Start"])
        day_end = dt.date.fromisoformat(result["TimePeriod"]["End"])
        if day_end - day_start != dt.timedelta(days=1):
            problems.append(f"result {day_start}..{day_end} is not one day")
        if day_start < start or day_end > end:
            problems.append(f"result {day_start} is outside [{start}, {end})")
        for entry in result.get("Groups", []):
            if sorted(entry["Metrics"]) != sorted(body["Metrics"]):
                problems.append(f"metrics {sorted(entry['Metrics'])} != {body['Metrics']}")
                break
    return "; ".join(dict.fromkeys(problems))
