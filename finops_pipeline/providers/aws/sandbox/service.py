"""Answering GetCostAndUsage requests from the synthetic organisation.

Pure request-in, response-out logic with no botocore: :mod:`finops_pipeline.providers.aws.sandbox.hook`
feeds it the JSON body botocore serialised and turns the result into an HTTP response. It
honours TimePeriod (End exclusive), Granularity (DAILY, MONTHLY), Metrics, GroupBy (up to two
of SERVICE, USAGE_TYPE, LINKED_ACCOUNT), a Dimensions Filter on those keys, and NextPageToken
pagination over groups, ``page_size`` groups per page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from finops_pipeline.providers.aws.sandbox.generator import (
    CostRow,
    DayCosts,
    Pull,
    SandboxGenerator,
)

METRICS: dict[str, Callable[[CostRow], Decimal]] = {
    "UnblendedCost": lambda row: row.unblended,
    "BlendedCost": lambda row: row.unblended,
    "AmortizedCost": lambda row: row.amortized,
    "NetUnblendedCost": lambda row: row.net_unblended,
    "NetAmortizedCost": lambda row: row.net_amortized,
    "UsageQuantity": lambda row: row.usage,
    "NormalizedUsageAmount": lambda row: row.usage,
}
_USAGE_METRICS = frozenset({"UsageQuantity", "NormalizedUsageAmount"})
DIMENSIONS: dict[str, Callable[[CostRow], str]] = {
    "SERVICE": lambda row: row.service,
    "USAGE_TYPE": lambda row: row.usage_type,
    "LINKED_ACCOUNT": lambda row: row.linked_account,
}
CURRENCY = "USD"
#: Daily data covers the current month and the previous 13.
HISTORY_MONTHS = 13
DEFAULT_PAGE_SIZE = 2000


class SandboxApiError(Exception):
    """An error Cost Explorer would return: ``code`` is its ``__type``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class CostQuery:
    """A validated GetCostAndUsage request."""

    start: dt.date
    end: dt.date  # exclusive, as in the API
    granularity: str
    metrics: tuple[str, ...]
    group_by: tuple[str, ...]
    filter_key: str | None
    filter_values: frozenset[str]
    next_page_token: str | None
    fingerprint: str


@dataclass(frozen=True)
class Period:
    """One ResultsByTime entry before paging."""

    start: dt.date
    end: dt.date
    estimated: bool
    groups: tuple[tuple[tuple[str, ...], dict[str, tuple[Decimal, str]]], ...]
    total: dict[str, tuple[Decimal, str]]


def history_start(as_of: dt.date) -> dt.date:
    """First day Cost Explorer still has daily data for: the 1st, 13 months back."""
    month_index = as_of.year * 12 + (as_of.month - 1) - HISTORY_MONTHS
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


def parse_query(body: dict[str, Any]) -> CostQuery:
    """Validate a GetCostAndUsage body the way Cost Explorer does.

    Raises:
        SandboxApiError: ``ValidationException`` for anything Cost Explorer would reject.
    """
    period = body.get("TimePeriod")
    if not isinstance(period, dict):
        raise SandboxApiError("ValidationException", "TimePeriod is required")
    try:
        start = dt.date.fromisoformat(str(period["Start"])[:10])
        end = dt.date.fromisoformat(str(period["End"])[:10])
    except (KeyError, ValueError):
        raise SandboxApiError(
            "ValidationException", "TimePeriod Start and End must be YYYY-MM-DD dates"
        ) from None
    if end <= start:
        raise SandboxApiError(
            "ValidationException", "Start date (and hour) should be before end date (and hour)"
        )
    granularity = body.get("Granularity")
    if granularity not in {"DAILY", "MONTHLY"}:
        raise SandboxApiError(
            "ValidationException",
            f"Granularity {granularity!r} is not supported by the sandbox; use DAILY or MONTHLY",
        )
    metrics = body.get("Metrics")
    if not isinstance(metrics, list) or not metrics:
        raise SandboxApiError("ValidationException", "Metrics must name at least one metric")
    unknown = [metric for metric in metrics if metric not in METRICS]
    if unknown:
        raise SandboxApiError("ValidationException", f"Unknown metrics: {', '.join(unknown)}")
    group_by = _parse_group_by(body.get("GroupBy") or [])
    filter_key, filter_values = _parse_filter(body.get("Filter"))
    unsigned = {key: value for key, value in body.items() if key != "NextPageToken"}
    fingerprint = hashlib.sha256(
        json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:24]
    return CostQuery(
        start=start,
        end=end,
        granularity=granularity,
        metrics=tuple(dict.fromkeys(metrics)),
        group_by=group_by,
        filter_key=filter_key,
        filter_values=filter_values,
        next_page_token=body.get("NextPageToken") or None,
        fingerprint=fingerprint,
    )


def _parse_group_by(entries: Sequence[Any]) -> tuple[str, ...]:
    if len(entries) > 2:
        raise SandboxApiError("ValidationException", "GroupBy accepts at most two entries")
    keys: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("Type") != "DIMENSION":
            raise SandboxApiError(
                "ValidationException", "The sandbox groups by DIMENSION only (no TAG/COST_CATEGORY)"
            )
        key = entry.get("Key")
        if key not in DIMENSIONS:
            raise SandboxApiError(
                "ValidationException",
                f"GroupBy key {key!r} is not one of {', '.join(DIMENSIONS)}",
            )
        if key in keys:
            raise SandboxApiError("ValidationException", f"GroupBy repeats {key}")
        keys.append(key)
    return tuple(keys)


def _parse_filter(expression: Any) -> tuple[str | None, frozenset[str]]:
    if expression is None:
        return None, frozenset()
    dimensions = expression.get("Dimensions") if isinstance(expression, dict) else None
    if not isinstance(dimensions, dict) or len(expression) != 1:
        raise SandboxApiError(
            "ValidationException", "The sandbox supports a single Dimensions filter only"
        )
    key = dimensions.get("Key")
    values = dimensions.get("Values")
    if key not in DIMENSIONS or not isinstance(values, list) or not values:
        raise SandboxApiError(
            "ValidationException",
            f"Filter Dimensions needs a Key among {', '.join(DIMENSIONS)} and Values",
        )
    return key, frozenset(str(value) for value in values)


def _encode_token(offset: int, query: CostQuery, pull: Pull) -> str:
    payload = {
        "o": offset,
        "f": query.fingerprint,
        "a": pull.as_of.isoformat(),
        "g": pull.generation,
    }
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _decode_token(token: str, query: CostQuery, pull: Pull) -> int:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, fingerprint = int(payload["o"]), str(payload["f"])
        as_of, generation = str(payload["a"]), int(payload["g"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise SandboxApiError("InvalidNextTokenException", "Invalid NextPageToken") from None
    if fingerprint != query.fingerprint:
        raise SandboxApiError(
            "RequestChangedException",
            "The request changed between pages; send the identical request with the token",
        )
    if as_of != pull.as_of.isoformat() or generation != pull.generation:
        # The data was refreshed since the first page: pages would mix two versions.
        raise SandboxApiError(
            "InvalidNextTokenException", "The NextPageToken expired; the data was refreshed"
        )
    if offset <= 0:
        raise SandboxApiError("InvalidNextTokenException", "Invalid NextPageToken")
    return offset


class CostExplorerSandbox:
    """GetCostAndUsage over a :class:`SandboxGenerator`, with pages of ``page_size`` groups."""

    def __init__(self, generator: SandboxGenerator, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.generator = generator
        self.page_size = page_size
        # The pages of one sequence share their periods; keep the last few sequences.
        self._cache: dict[tuple[str, str, Pull], list[Period]] = {}

    def get_cost_and_usage(
        self, body: dict[str, Any], *, caller: str, pull: Pull
    ) -> dict[str, Any]:
        """One page of the response, as Cost Explorer's JSON.

        Raises:
            SandboxApiError: the request is invalid, too old, or its token is bad.
        """
        query = parse_query(body)
        earliest = history_start(pull.as_of)
        if query.start < earliest:
            raise SandboxApiError(
                "BillExpirationException",
                f"Daily data starts at {earliest}: the current month and the previous "
                f"{HISTORY_MONTHS}",
            )
        offset = _decode_token(query.next_page_token, query, pull) if query.next_page_token else 0
        periods = self._periods(query, caller, pull)
        return self._page(periods, query, pull, offset)

    def _periods(self, query: CostQuery, caller: str, pull: Pull) -> list[Period]:
        key = (query.fingerprint, caller, pull)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        days: list[DayCosts] = []
        day = query.start
        while day < query.end:
            days.append(self.generator.organisation_day(caller, day, pull))
            day += dt.timedelta(days=1)
        periods = [
            _aggregate(chunk, start, end, query)
            for start, end, chunk in _split_periods(days, query)
        ]
        if len(self._cache) >= 8:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = periods
        return periods

    def _page(
        self, periods: list[Period], query: CostQuery, pull: Pull, offset: int
    ) -> dict[str, Any]:
        # Paging counts groups; an ungrouped period counts as one. A period with no groups
        # rides on the page where its position falls, so no period is ever lost.
        sizes = [len(period.groups) if query.group_by else 1 for period in periods]
        total_items = sum(sizes)
        if offset and (offset >= total_items or offset % self.page_size):
            raise SandboxApiError("InvalidNextTokenException", "Invalid NextPageToken")
        limit = offset + self.page_size
        page_index = offset // self.page_size
        last_page = max(0, -(-total_items // self.page_size) - 1)
        results: list[dict[str, Any]] = []
        position = 0
        for period, size in zip(periods, sizes, strict=True):
            first, last = position, position + size
            position = last
            if size == 0:
                on_page = min(first // self.page_size, last_page) == page_index
            else:
                on_page = first < limit and last > offset
            if not on_page:
                continue
            entry: dict[str, Any] = {
                "TimePeriod": {"Start": period.start.isoformat(), "End": period.end.isoformat()},
                "Total": {} if query.group_by else _metrics_json(period.total),
                "Groups": [],
                "Estimated": period.estimated,
            }
            if query.group_by:
                begin, end = max(offset - first, 0), min(limit - first, size)
                entry["Groups"] = [
                    {"Keys": list(keys), "Metrics": _metrics_json(metrics)}
                    for keys, metrics in period.groups[begin:end]
                ]
            results.append(entry)
        page: dict[str, Any] = {
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": key} for key in query.group_by],
            "ResultsByTime": results,
            "DimensionValueAttributes": [],
        }
        if limit < total_items:
            page["NextPageToken"] = _encode_token(limit, query, pull)
        return page

    def minimum_requests(self, body: dict[str, Any], *, caller: str, pull: Pull) -> int:
        """Fewest requests that can return this query's data: one per ``page_size`` groups."""
        query = parse_query(body)
        periods = self._periods(query, caller, pull)
        items = sum(len(period.groups) if query.group_by else 1 for period in periods)
        return max(1, -(-items // self.page_size))


def _split_periods(
    days: list[DayCosts], query: CostQuery
) -> list[tuple[dt.date, dt.date, list[DayCosts]]]:
    if query.granularity == "DAILY":
        return [(day.day, day.day + dt.timedelta(days=1), [day]) for day in days]
    months: list[tuple[dt.date, dt.date, list[DayCosts]]] = []
    for day in days:
        if months and (months[-1][0].year, months[-1][0].month) == (day.day.year, day.day.month):
            months[-1][2].append(day)
        else:
            months.append((day.day, day.day, [day]))
    # A month's period runs from its first requested day to the day after its last.
    return [(start, chunk[-1].day + dt.timedelta(days=1), chunk) for start, _, chunk in months]


def _aggregate(days: list[DayCosts], start: dt.date, end: dt.date, query: CostQuery) -> Period:
    rows = [row for day in days for row in day.rows]
    if query.filter_key is not None:
        dimension = DIMENSIONS[query.filter_key]
        rows = [row for row in rows if dimension(row) in query.filter_values]
    groups: dict[tuple[str, ...], list[CostRow]] = {}
    for row in rows:
        keys = tuple(DIMENSIONS[key](row) for key in query.group_by)
        groups.setdefault(keys, []).append(row)
    estimated = any(day.estimated for day in days)
    if not query.group_by:
        return Period(start, end, estimated, (), _sum_metrics(rows, query.metrics))
    ordered = tuple((keys, _sum_metrics(groups[keys], query.metrics)) for keys in sorted(groups))
    return Period(start, end, estimated, ordered, {})


def _sum_metrics(rows: list[CostRow], metrics: tuple[str, ...]) -> dict[str, tuple[Decimal, str]]:
    result: dict[str, tuple[Decimal, str]] = {}
    if len(rows) == 1:
        row = rows[0]
        for metric in metrics:
            unit = row.unit if metric in _USAGE_METRICS else CURRENCY
            result[metric] = (METRICS[metric](row), unit)
        return result
    for metric in metrics:
        read = METRICS[metric]
        amount = sum((read(row) for row in rows), Decimal(0))
        if metric in _USAGE_METRICS:
            # Usage in different units cannot be added up; Cost Explorer then says "N/A".
            units = {row.unit for row in rows}
            unit = units.pop() if len(units) == 1 else "N/A"
        else:
            unit = CURRENCY
        result[metric] = (amount, unit)
    return result


def _metrics_json(metrics: dict[str, tuple[Decimal, str]]) -> dict[str, dict[str, str]]:
    return {
        name: {"Amount": format(amount, "f"), "Unit": unit}
        for name, (amount, unit) in metrics.items()
    }


#: GetDimensionValues' default and largest page.
DIMENSION_VALUES_PAGE_SIZE = 1000


def get_dimension_values(
    body: dict[str, Any], *, caller: str, members: Sequence[str], names: dict[str, str]
) -> dict[str, Any]:
    """GetDimensionValues for LINKED_ACCOUNT: the accounts whose costs ``caller`` sees.

    A payer sees itself and its members; any other account only itself. Each value carries
    the account's name in ``Attributes.description``, as Cost Explorer does. Paged by
    ``MaxResults`` with an offset token.

    Raises:
        SandboxApiError: ``ValidationException`` for another dimension or a bad period.
    """
    if body.get("Dimension") != "LINKED_ACCOUNT":
        raise SandboxApiError(
            "ValidationException", "The sandbox serves GetDimensionValues for LINKED_ACCOUNT only"
        )
    period = body.get("TimePeriod") or {}
    try:
        start = dt.date.fromisoformat(str(period["Start"])[:10])
        end = dt.date.fromisoformat(str(period["End"])[:10])
    except (KeyError, ValueError):
        raise SandboxApiError(
            "ValidationException", "TimePeriod Start and End must be YYYY-MM-DD dates"
        ) from None
    if end <= start:
        raise SandboxApiError(
            "ValidationException", "Start date (and hour) should be before end date (and hour)"
        )
    size = int(body.get("MaxResults") or DIMENSION_VALUES_PAGE_SIZE)
    if not 1 <= size <= DIMENSION_VALUES_PAGE_SIZE:
        raise SandboxApiError("ValidationException", "MaxResults must be between 1 and 1000")
    values = sorted(members)
    search = str(body.get("SearchString") or "")
    if search:
        values = [value for value in values if search in value]
    token = body.get("NextPageToken")
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(str(token).encode()).decode())
        except (binascii.Error, ValueError):
            raise SandboxApiError("InvalidNextTokenException", "Invalid NextPageToken") from None
        if not 0 < offset < len(values):
            raise SandboxApiError("InvalidNextTokenException", "Invalid NextPageToken")
    page = values[offset : offset + size]
    answer: dict[str, Any] = {
        "DimensionValues": [
            {"Value": value, "Attributes": {"description": names.get(value, value)}}
            for value in page
        ],
        "ReturnSize": len(page),
        "TotalSize": len(values),
    }
    if offset + size < len(values):
        answer["NextPageToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
    return answer
