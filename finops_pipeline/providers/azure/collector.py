"""One subscription's daily costs for one date range: windows × cost types → pages → rows.

A range is split into the fewest windows one query keeps whole, each window is queried as
``ActualCost`` and as ``AmortizedCost`` (following every ``nextLink``), and the two are merged
per (day, service, meter). Requests and QPU are read from the client's meter, so throttled
requests are counted too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from finops_pipeline.providers.azure.client import CostManagementQueryClient
from finops_pipeline.providers.azure.paging import QuerySender, fetch_query_pages
from finops_pipeline.providers.azure.parsing import (
    MONTH_CLOSE_DAY,
    CostRecord,
    is_estimated_day,
    merge_cost_types,
    read_cost_records,
)
from finops_pipeline.providers.azure.query import (
    DEFAULT_GROUPING,
    CostScope,
    CostType,
    build_query_body,
    encode_query_body,
    split_query_windows,
)
from finops_pipeline.providers.base import ParsedCosts
from finops_pipeline.sync.ranges import DateRange


@dataclass(frozen=True)
class CollectedRange:
    """The merged rows of one range and how many queries and pages it took."""

    parsed: ParsedCosts
    windows: tuple[DateRange, ...]
    queries: int
    pages: int


def collect_range(
    sender: QuerySender,
    scope: CostScope,
    window: DateRange,
    *,
    as_of: dt.date,
    grouping: tuple[str, ...] = DEFAULT_GROUPING,
    month_close_day: int = MONTH_CLOSE_DAY,
) -> CollectedRange:
    """Query every window of ``window`` as both cost types and merge the rows."""
    windows = split_query_windows(window)
    records: dict[CostType, list[CostRecord]] = {CostType.ACTUAL: [], CostType.AMORTIZED: []}
    pages = 0
    for part in windows:
        for cost_type in (CostType.ACTUAL, CostType.AMORTIZED):
            body = encode_query_body(build_query_body(cost_type, part, grouping=grouping))
            paged = fetch_query_pages(sender, scope, body)
            pages += paged.requests
            for page in paged.pages:
                records[cost_type].extend(read_cost_records(page, grouping=grouping))
    days = [window.start + dt.timedelta(days=offset) for offset in range(window.days)]
    parsed = merge_cost_types(
        records[CostType.ACTUAL],
        records[CostType.AMORTIZED],
        days=days,
        as_of=as_of,
        close_day=month_close_day,
    )
    return CollectedRange(
        parsed=parsed, windows=tuple(windows), queries=2 * len(windows), pages=pages
    )


@dataclass(frozen=True)
class AzureFetch:
    """What one range cost: rows, and the requests and QPU spent on them."""

    collected: CollectedRange
    #: Every response Resource Manager sent, 429s included.
    requests: int
    throttled_requests: int
    qpu_consumed: Decimal
    seconds_waited: float

    @property
    def parsed(self) -> ParsedCosts:
        return self.collected.parsed


def fetch_daily_costs(
    client: CostManagementQueryClient,
    scope: CostScope,
    window: DateRange,
    *,
    as_of: dt.date,
    month_close_day: int = MONTH_CLOSE_DAY,
) -> AzureFetch:
    """Collect ``window`` through ``client`` and report what it spent."""
    requests_before = client.meter.requests
    qpu_before = client.meter.qpu_consumed
    throttled_before = client.throttling.throttled_responses
    waited_before = client.throttling.seconds_waited
    collected = collect_range(client, scope, window, as_of=as_of, month_close_day=month_close_day)
    return AzureFetch(
        collected=collected,
        requests=client.meter.requests - requests_before,
        throttled_requests=client.throttling.throttled_responses - throttled_before,
        qpu_consumed=client.meter.qpu_consumed - qpu_before,
        seconds_waited=client.throttling.seconds_waited - waited_before,
    )


@dataclass(frozen=True)
class AzureDailyTotals:
    """The subscription's own ActualCost total per (day, currency), and what it spent."""

    by_day: dict[tuple[dt.date, str], Decimal]
    estimated_days: frozenset[dt.date]
    queries: int
    requests: int
    qpu_consumed: Decimal


def fetch_daily_totals(
    client: CostManagementQueryClient,
    scope: CostScope,
    window: DateRange,
    *,
    as_of: dt.date,
    month_close_day: int = MONTH_CLOSE_DAY,
) -> AzureDailyTotals:
    """One ungrouped Daily ``ActualCost`` query per query window of ``window``.

    Without a grouping, Cost Management sums the scope's costs per day itself, apart from the
    ServiceName/Meter groups the rows come from: the reconciliation check's independent side.
    Queries are not billed, but each consumes QPU; they are counted like the fetch's.
    """
    requests_before = client.meter.requests
    qpu_before = client.meter.qpu_consumed
    by_day: dict[tuple[dt.date, str], Decimal] = {}
    windows = split_query_windows(window)
    for part in windows:
        body = encode_query_body(build_query_body(CostType.ACTUAL, part, grouping=()))
        for page in fetch_query_pages(client, scope, body).pages:
            for record in read_cost_records(page, grouping=()):
                key = (record.day, record.currency)
                by_day[key] = by_day.get(key, Decimal(0)) + record.cost
    days = [window.start + dt.timedelta(days=offset) for offset in range(window.days)]
    return AzureDailyTotals(
        by_day=by_day,
        estimated_days=frozenset(
            day for day in days if is_estimated_day(day, as_of, close_day=month_close_day)
        ),
        queries=len(windows),
        requests=client.meter.requests - requests_before,
        qpu_consumed=client.meter.qpu_consumed - qpu_before,
    )
