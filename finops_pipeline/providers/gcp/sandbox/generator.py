"""A deterministic synthetic Cloud Billing export.

Every row is a pure function of (seed, billing account, project, usage day): two processes
compute the same export without sharing state. A *pull* is the moment the table is read
(``as_of``, UTC): it holds the rows whose ``export_time`` is not later, so pulls at later
moments see more rows and newer watermarks, as the real export does.

What the rows model:

* real service descriptions, SKU descriptions and units (:mod:`.catalogue`), four hourly rows
  per SKU and day (01:00, 07:00, 13:00 and 23:00 UTC);
* 0, 1 or 2 credits per row (sustained and committed use discounts, free tier, spending-based
  discounts), negative, as the export has them;
* export a few hours after the usage hour, into the partition of the export's day; about 3% of
  rows are exported 1–4 days late, and some days get a late promotion credit row (cost 0)
  2–6 days later: both land in newer partitions and move the day's ``max(export_time)``;
* late rows exported after their month ended are billed in the next invoice month;
* every row is in ``us-central1``; a zonal SKU's rows (VM cores and memory, disks) name one of
  its four zones each, by usage hour, so a project with VMs or disks shows all four.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from finops_pipeline.providers.gcp.sandbox.catalogue import (
    CREDIT_NAMES,
    EXPORT_SCHEMA,
    SANDBOX_PROJECT_ZONES,
    SANDBOX_REGION,
    SERVICES,
    Service,
    Sku,
)
from finops_pipeline.providers.gcp.sandbox.engine import PARTITIONTIME, BigQueryEngine, TableRef

DEFAULT_SEED = 20250101
DEFAULT_BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
#: The usage hours (UTC) of each SKU's rows in a day.
USAGE_HOURS = (1, 7, 13, 23)
LATE_ROW_SHARE = 0.03
LATE_CREDIT_SHARE = 0.06
CURRENCY = "USD"

_PROFILE_STREAM = 1
_DAY_STREAM = 2
_CREDIT_COUNT_WEIGHTS = (0.45, 0.35, 0.20)


def _stable(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class CostLine:
    """A SKU a project pays for, at a base daily cost."""

    service: Service
    sku: Sku
    daily_cost: float


@dataclass(frozen=True)
class ProjectProfile:
    """Everything fixed about one project."""

    project_id: str
    number: str
    lines: tuple[CostLine, ...]
    environment: str


#: A zonal row's location by usage hour // 6 (01:00 a, 07:00 b, 12:00 and 13:00 c, 23:00 f);
#: read-only, shared by the rows.
_ZONE_LOCATIONS: tuple[dict[str, Any], ...] = tuple(
    {"location": zone, "country": "US", "region": SANDBOX_REGION, "zone": zone}
    for zone in SANDBOX_PROJECT_ZONES
)


def standard_table_name(billing_account_id: str) -> str:
    """``gcp_billing_export_v1_<BILLING_ACCOUNT_ID>``, with the id's hyphens as underscores."""
    return "gcp_billing_export_v1_" + billing_account_id.replace("-", "_")


class BillingExportGenerator:
    """Rows of one billing account's export, for any project id."""

    def __init__(
        self, seed: int = DEFAULT_SEED, billing_account_id: str = DEFAULT_BILLING_ACCOUNT
    ) -> None:
        self.seed = seed
        self.billing_account_id = billing_account_id
        self._profile = lru_cache(maxsize=256)(self._build_profile)
        self._ancestry = f"/{_stable(billing_account_id) % 10**12}/"
        self._shared: dict[tuple[str, str], dict[str, Any]] = {}

    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _stable(self.billing_account_id), *stream])

    def profile(self, project_id: str) -> ProjectProfile:
        """The project's SKUs and sizes."""
        return self._profile(project_id)

    def _build_profile(self, project_id: str) -> ProjectProfile:
        rng = self._rng(_PROFILE_STREAM, _stable(project_id))
        size = float(rng.lognormal(0.0, 0.6))
        count = int(rng.integers(5, len(SERVICES) + 1))
        chosen = sorted(rng.choice(len(SERVICES), size=count, replace=False))
        lines = []
        for index in chosen:
            service = SERVICES[int(index)]
            sku_count = int(rng.integers(1, len(service.skus) + 1))
            skus = sorted(rng.choice(len(service.skus), size=sku_count, replace=False))
            service_cost = service.daily_scale * size * float(rng.lognormal(0.0, 0.5))
            for sku_index in skus:
                share = float(rng.uniform(0.2, 1.0))
                lines.append(CostLine(service, service.skus[int(sku_index)], service_cost * share))
        number = str(100_000_000_000 + _stable(project_id) % 900_000_000_000)
        environment = ("prod", "staging", "dev")[_stable(project_id) % 3]
        return ProjectProfile(project_id, number, tuple(lines), environment)

    def day_rows(self, project_id: str, day: dt.date) -> list[dict[str, Any]]:
        """Every row ever exported for ``project_id``'s usage on ``day``, late ones included.

        Each row carries ``_PARTITIONTIME``: the moment it was loaded (its export_time).
        """
        profile = self.profile(project_id)
        rng = self._rng(_DAY_STREAM, _stable(project_id), day.toordinal())
        weekday_factor = 0.8 if day.weekday() >= 5 else 1.0
        line_count = len(profile.lines)
        hours = len(USAGE_HOURS)
        noise = rng.lognormal(0.0, 0.15, size=(line_count, hours))
        delays = rng.uniform(1.5, 9.0, size=(line_count, hours))
        late = rng.random(size=(line_count, hours)) < LATE_ROW_SHARE
        late_days = rng.integers(1, 5, size=(line_count, hours))
        credit_counts = rng.choice(3, size=(line_count, hours), p=_CREDIT_COUNT_WEIGHTS)
        credit_shares = rng.uniform(0.03, 0.3, size=(line_count, hours, 2))
        credit_picks = rng.random(size=(line_count, hours, 2))
        daily = np.array([line.daily_cost for line in profile.lines], dtype=float)
        # Costs are FLOAT64 in the export; rounded to 6 places like real rows, in one go.
        costs = np.round(daily[:, None] / hours * weekday_factor * noise, 6).tolist()
        credit_amounts = (-np.round(np.asarray(costs)[:, :, None] * credit_shares, 6)).tolist()
        delay_hours = (delays + 1.0 + np.where(late, late_days * 24.0, 0.0)).tolist()
        counts = credit_counts.tolist()
        picks = credit_picks.tolist()
        day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        rows: list[dict[str, Any]] = []
        for line_index, line in enumerate(profile.lines):
            for hour_index, hour in enumerate(USAGE_HOURS):
                start = day_start + dt.timedelta(hours=hour)
                exported = start + dt.timedelta(hours=delay_hours[line_index][hour_index])
                credits = self._credits(
                    line.sku,
                    counts[line_index][hour_index],
                    credit_amounts[line_index][hour_index],
                    picks[line_index][hour_index],
                )
                rows.append(
                    self._row(
                        profile, line, start, exported, costs[line_index][hour_index], credits
                    )
                )
        if rng.random() < LATE_CREDIT_SHARE and profile.lines:
            line = profile.lines[0]
            start = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)
            exported = start + dt.timedelta(days=int(rng.integers(2, 7)), hours=3)
            amount = -round(line.daily_cost * float(rng.uniform(0.05, 0.2)), 6)
            credit = self._credit("PROMOTION", amount)
            row = self._row(profile, line, start, exported, 0.0, [credit])
            row["usage"]["amount"] = 0.0
            row["usage"]["amount_in_pricing_units"] = 0.0
            rows.append(row)
        return rows

    def _credits(
        self, sku: Sku, count: int, amounts: list[float], picks: list[float]
    ) -> list[dict[str, Any]]:
        available = [*sku.credit_types, "DISCOUNT"]
        count = min(count, len(available))
        credits = []
        for position in range(count):
            kind = available[int(picks[position] * len(available))]
            available.remove(kind)
            credits.append(self._credit(kind, amounts[position]))
        return credits

    @staticmethod
    def _credit(kind: str, amount: float) -> dict[str, Any]:
        name = CREDIT_NAMES[kind]
        return {
            "name": name,
            "amount": amount,
            "full_name": name,
            "id": f"{kind.lower()}-{_stable(name) % 100000:05d}",
            "type": kind,
        }

    def _row(
        self,
        profile: ProjectProfile,
        line: CostLine,
        start: dt.datetime,
        exported: dt.datetime,
        cost: float,
        credits: list[dict[str, Any]],
    ) -> dict[str, Any]:
        sku = line.sku
        pricing_amount = cost / sku.price_per_pricing_unit
        usage_month = start.date().replace(day=1)
        # Usage exported after its month ended is billed in the month it was exported in.
        late_crossover = exported.date().replace(day=1) > usage_month and (
            exported - start > dt.timedelta(days=1)
        )
        invoice_day = exported.date() if late_crossover else start.date()
        shared = self._shared_parts(profile, line)
        zonal = {"location": _ZONE_LOCATIONS[start.hour // 6]} if sku.zonal else {}
        return {
            **shared,
            **zonal,
            "usage_start_time": start,
            "usage_end_time": start + dt.timedelta(hours=1),
            "export_time": exported,
            "cost": cost,
            "usage": {
                "amount": round(pricing_amount * sku.units_per_pricing_unit, 3),
                "unit": sku.unit,
                "amount_in_pricing_units": round(pricing_amount, 6),
                "pricing_unit": sku.pricing_unit,
            },
            "credits": credits,
            "invoice": {"month": f"{invoice_day.year:04d}{invoice_day.month:02d}"},
            PARTITIONTIME: exported,
        }

    def _shared_parts(self, profile: ProjectProfile, line: CostLine) -> dict[str, Any]:
        """The columns every row of one project and SKU share (read-only, shared objects)."""
        key = (profile.project_id, line.sku.description)
        parts = self._shared.get(key)
        if parts is None:
            parts = {
                "billing_account_id": self.billing_account_id,
                "service": {
                    "id": line.service.service_id,
                    "description": line.service.description,
                },
                "sku": {"id": line.sku.sku_id, "description": line.sku.description},
                "project": {
                    "id": profile.project_id,
                    "number": profile.number,
                    "name": profile.project_id,
                    "ancestry_numbers": self._ancestry,
                },
                "labels": [{"key": "env", "value": profile.environment}],
                "location": {
                    "location": SANDBOX_REGION,
                    "country": "US",
                    "region": SANDBOX_REGION,
                    "zone": None,
                },
                "currency": CURRENCY,
                "currency_conversion_rate": 1.0,
                "cost_type": "regular",
            }
            self._shared[key] = parts
        return parts

    def rows(
        self,
        project_ids: Sequence[str],
        start: dt.date,
        end: dt.date,
        *,
        as_of: dt.datetime,
    ) -> Iterator[dict[str, Any]]:
        """Rows for usage days ``start``..``end`` (inclusive) exported by ``as_of``."""
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (UTC)")
        day = start
        while day <= end:
            for project_id in project_ids:
                for row in self.day_rows(project_id, day):
                    if row["export_time"] <= as_of:
                        yield row
            day += dt.timedelta(days=1)

    def watermarks(
        self,
        project_ids: Sequence[str],
        start: dt.date,
        end: dt.date,
        *,
        as_of: dt.datetime,
    ) -> dict[dt.date, dt.datetime]:
        """max(export_time) per usage day, as the export holds it at ``as_of``."""
        marks: dict[dt.date, dt.datetime] = {}
        for row in self.rows(project_ids, start, end, as_of=as_of):
            day = row["usage_start_time"].date()
            marks[day] = max(marks.get(day, row["export_time"]), row["export_time"])
        return marks


def create_export_table(
    engine: BigQueryEngine,
    ref: TableRef,
    *,
    location: str = "US",
    partitioning: str = "ingestion_time",
) -> None:
    """Create an empty export table: ``ingestion_time`` (as Cloud Billing creates it),
    ``usage_start_time`` (column-partitioned) or ``none``.
    """
    time_partitioning: dict[str, Any] | None
    if partitioning == "ingestion_time":
        time_partitioning = {"type": "DAY"}
    elif partitioning == "usage_start_time":
        time_partitioning = {"type": "DAY", "field": "usage_start_time"}
    elif partitioning == "none":
        time_partitioning = None
    else:
        raise ValueError(f"unknown partitioning {partitioning!r}")
    engine.create_table(ref, EXPORT_SCHEMA, location=location, time_partitioning=time_partitioning)


def seed_export(
    engine: BigQueryEngine,
    ref: TableRef,
    rows: Iterable[dict[str, Any]],
) -> int:
    """Load rows into an export table; returns how many."""
    return engine.insert_rows(ref, rows)
