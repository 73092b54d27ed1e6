"""A deterministic synthetic organisation's daily AWS costs.

Every value is a pure function of (seed, account number, day, pull), so two processes (the
demo, a Dagster run worker, a benchmark) compute the same numbers without sharing any state.
A *pull* is the moment the data is read: its ``as_of`` day is "today" in UTC, and its
``generation`` counts re-reads. The last :data:`SETTLING_DAYS` days before ``as_of`` are still
Estimated and change from one pull to the next, as Cost Explorer's restatements do; ``as_of``
itself is partial and later days have no data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import numpy as np

from finops_pipeline.providers.aws.sandbox.catalogue import (
    CREDIT_USAGE_TYPE,
    DEMO_TENANTS,
    REFUND_USAGE_TYPE,
    REGION_PREFIXES,
    SERVICES,
    organisation_members,
)

DEFAULT_SEED = 20240101
#: Day zero of the synthetic history; the growth trend counts from here.
EPOCH = dt.date(2024, 1, 1)
#: Days before ``as_of`` that are still Estimated and still change between pulls.
SETTLING_DAYS = 3
#: Share of a full day that today's partial data holds.
PARTIAL_DAY_FRACTION = 0.45
#: How far a settling day's value moves from one pull to the next, either way.
RESTATEMENT_SPREAD = 0.05

#: The demo's accounts also have an incident every few weeks from this day on, so any recent
#: window of ``finops demo`` shows anomalies for every tenant. Other accounts (tests,
#: benchmarks) keep only their sparse random spikes.
DEMO_INCIDENTS_FROM = dt.date(2026, 7, 1)
DEMO_INCIDENTS_UNTIL = dt.date(2031, 1, 1)
#: The demo's incidents hit one of the account's costliest lines, so they are material.
_DEMO_INCIDENT_LINES = 4

_PROFILE_STREAM = 1
_DAY_STREAM = 2
_RESTATEMENT_STREAM = 3
_TEN_PLACES = "{:.10f}"
_NO_UNIT = "N/A"
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Pull:
    """When the data is read: ``as_of`` is today (UTC); ``generation`` counts re-reads."""

    as_of: dt.date
    generation: int = 0


@dataclass(frozen=True)
class CostLine:
    """One (service, usage type) an account pays for."""

    service: str
    usage_type: str
    unit: str
    base_daily_cost: float
    units_per_dollar: float
    weekend_factor: float
    amortization: float
    active_from: dt.date


@dataclass(frozen=True)
class Anomaly:
    """A cost spike: line ``line_index`` costs ``factor`` times more for ``days`` days."""

    line_index: int
    start: dt.date
    days: int
    factor: float

    def covers(self, day: dt.date) -> bool:
        return self.start <= day < self.start + dt.timedelta(days=self.days)


@dataclass(frozen=True)
class InjectedAnomaly:
    """A spike as it shows in the data: one usage type of one account, ``multiplier`` times.

    ``start`` and ``days`` cover only the days the usage type has rows, so a spike injected
    before the usage type started (or partly before) is trimmed to what a reader can see.
    """

    account: str
    service: str
    usage_type: str
    start: dt.date
    days: int
    multiplier: float

    @property
    def last_day(self) -> dt.date:
        """The last affected day, inclusive."""
        return self.start + dt.timedelta(days=self.days - 1)

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.last_day


@dataclass(frozen=True)
class AccountProfile:
    """Everything fixed about one account: what it uses, how it grows, its credits."""

    number: str
    lines: tuple[CostLine, ...]
    growth_per_year: float
    discount: float
    anomalies: tuple[Anomaly, ...]
    credit_line: int | None
    credit_share: float
    credit_from: dt.date
    credit_until: dt.date
    refund_rate: float


@dataclass(frozen=True)
class CostRow:
    """One account's cost for one usage type on one day; amounts as Cost Explorer sends them."""

    linked_account: str
    service: str
    usage_type: str
    unit: str
    unblended: Decimal
    amortized: Decimal
    net_unblended: Decimal
    net_amortized: Decimal
    usage: Decimal


@dataclass(frozen=True)
class DayCosts:
    """One day of one account as seen at a pull."""

    day: dt.date
    estimated: bool
    rows: tuple[CostRow, ...]


def _account_int(number: str) -> int:
    if len(number) != 12 or not number.isdigit():
        raise ValueError(f"{number!r} is not a 12-digit AWS account number")
    return int(number)


def _amount(value: float) -> Decimal:
    return Decimal(_TEN_PLACES.format(value))


class SandboxGenerator:
    """Daily costs of any 12-digit account, deterministic from the seed.

    Args:
        seed: Changes every account's profile and every day's noise.
        min_services: Fewest services an account uses.
        max_services: Most services an account uses (at most the catalogue's size).
    """

    def __init__(
        self, seed: int = DEFAULT_SEED, *, min_services: int = 12, max_services: int = 30
    ) -> None:
        if not 1 <= min_services <= max_services <= len(SERVICES):
            raise ValueError(
                f"need 1 <= min_services <= max_services <= {len(SERVICES)} (the catalogue)"
            )
        self.seed = seed
        self.min_services = min_services
        self.max_services = max_services
        self._profile = lru_cache(maxsize=4096)(self._build_profile)

    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    def profile(self, account_number: str) -> AccountProfile:
        """The account's fixed traits, derived from the seed and its number."""
        return self._profile(account_number)

    def _build_profile(self, account_number: str) -> AccountProfile:
        rng = self._rng(_PROFILE_STREAM, _account_int(account_number))
        popularity = np.array([service.popularity for service in SERVICES], dtype=float)
        count = int(rng.integers(self.min_services, self.max_services + 1))
        chosen = sorted(
            rng.choice(len(SERVICES), size=count, replace=False, p=popularity / popularity.sum())
        )
        region_count = int(rng.integers(1, 3))
        regions = [REGION_PREFIXES[int(i)] for i in rng.choice(3, size=region_count, replace=False)]
        size = float(rng.lognormal(0.0, 0.8))
        lines: list[CostLine] = []
        for index in chosen:
            service = SERVICES[index]
            weights = sum(usage.weight for usage in service.usage_types)
            service_cost = service.scale * size * float(rng.lognormal(0.0, 0.7))
            service_regions = regions if service.regional else [""]
            for position, region in enumerate(service_regions):
                region_share = 1.0 if position == 0 else float(rng.uniform(0.1, 0.5))
                for usage in service.usage_types:
                    late_start = rng.random() < 0.15
                    lines.append(
                        CostLine(
                            service=service.name,
                            usage_type=f"{region}{usage.name}",
                            unit=usage.unit,
                            base_daily_cost=service_cost * region_share * usage.weight / weights,
                            units_per_dollar=usage.units_per_dollar,
                            weekend_factor=service.weekend_factor,
                            amortization=service.amortization,
                            active_from=EPOCH
                            + dt.timedelta(days=int(rng.integers(60, 900)) if late_start else 0),
                        )
                    )
        anomalies = tuple(
            Anomaly(
                line_index=int(rng.integers(len(lines))),
                start=EPOCH + dt.timedelta(days=int(rng.integers(0, 1100))),
                days=int(rng.integers(2, 7)),
                factor=float(rng.uniform(3.0, 8.0)),
            )
            for _ in range(int(rng.integers(2, 6)))
        )
        if account_number in _DEMO_ACCOUNTS:
            anomalies += _demo_incidents(self.seed, account_number, lines)
        has_credits = rng.random() < 0.5
        credit_from = EPOCH + dt.timedelta(days=int(rng.integers(0, 700)))
        costliest = max(range(len(lines)), key=lambda i: lines[i].base_daily_cost)
        return AccountProfile(
            number=account_number,
            lines=tuple(lines),
            growth_per_year=float(rng.uniform(0.05, 0.6)),
            discount=float(rng.choice([0.0, 0.0, 0.03, 0.07])),
            anomalies=anomalies,
            credit_line=costliest if has_credits else None,
            credit_share=float(rng.uniform(0.1, 0.4)),
            credit_from=credit_from,
            credit_until=credit_from + dt.timedelta(days=int(rng.integers(60, 240))),
            refund_rate=float(rng.uniform(0.005, 0.03)),
        )

    def injected_anomalies(self, account_number: str) -> tuple[InjectedAnomaly, ...]:
        """The account's injected spikes, in start order, trimmed to days with data."""
        profile = self.profile(account_number)
        visible: list[InjectedAnomaly] = []
        for anomaly in profile.anomalies:
            line = profile.lines[anomaly.line_index]
            end = anomaly.start + dt.timedelta(days=anomaly.days)
            start = max(anomaly.start, line.active_from)
            if start >= end:
                continue
            visible.append(
                InjectedAnomaly(
                    account=account_number,
                    service=line.service,
                    usage_type=line.usage_type,
                    start=start,
                    days=(end - start).days,
                    multiplier=anomaly.factor,
                )
            )
        return tuple(sorted(visible, key=lambda a: (a.start, a.service, a.usage_type)))

    def day_costs(self, account_number: str, day: dt.date, pull: Pull) -> DayCosts:
        """One account's rows for one day, as a pull at ``pull.as_of`` sees them."""
        if day > pull.as_of:
            return DayCosts(day=day, estimated=True, rows=())
        profile = self.profile(account_number)
        account = _account_int(account_number)
        count = len(profile.lines)
        rng = self._rng(_DAY_STREAM, account, day.toordinal())
        noise = rng.uniform(0.88, 1.12, count)
        refund_draw, refund_scale = float(rng.random()), float(rng.uniform(0.5, 3.0))
        refund_line = int(rng.integers(count))
        age = (pull.as_of - day).days
        settling = age <= SETTLING_DAYS
        if settling:
            restated = self._rng(
                _RESTATEMENT_STREAM,
                account,
                day.toordinal(),
                pull.as_of.toordinal(),
                pull.generation,
            )
            noise = noise * (1.0 + restated.uniform(-RESTATEMENT_SPREAD, RESTATEMENT_SPREAD, count))
        trend = (1.0 + profile.growth_per_year) ** ((day - EPOCH).days / 365.25)
        if age == 0:
            trend *= PARTIAL_DAY_FRACTION
        weekend = day.weekday() >= 5
        keep = 1.0 - profile.discount
        costs: list[float] = []
        rows: list[CostRow] = []
        for index, line in enumerate(profile.lines):
            cost = line.base_daily_cost * trend * float(noise[index])
            if weekend:
                cost *= line.weekend_factor
            for anomaly in profile.anomalies:
                if anomaly.line_index == index and anomaly.covers(day):
                    cost *= anomaly.factor
            costs.append(cost)
            if day < line.active_from:
                continue
            amortized = cost * line.amortization
            rows.append(
                CostRow(
                    linked_account=account_number,
                    service=line.service,
                    usage_type=line.usage_type,
                    unit=line.unit,
                    unblended=_amount(cost),
                    amortized=_amount(amortized),
                    net_unblended=_amount(cost * keep),
                    net_amortized=_amount(amortized * keep),
                    usage=_amount(cost * line.units_per_dollar),
                )
            )
        if (
            profile.credit_line is not None
            and profile.credit_from <= day < profile.credit_until
            and day >= profile.lines[profile.credit_line].active_from
        ):
            rows.append(
                _negative_row(
                    account_number,
                    profile.lines[profile.credit_line].service,
                    CREDIT_USAGE_TYPE,
                    costs[profile.credit_line] * profile.credit_share,
                )
            )
        if refund_draw < profile.refund_rate and day >= profile.lines[refund_line].active_from:
            rows.append(
                _negative_row(
                    account_number,
                    profile.lines[refund_line].service,
                    REFUND_USAGE_TYPE,
                    costs[refund_line] * refund_scale,
                )
            )
        return DayCosts(day=day, estimated=settling, rows=tuple(rows))

    def organisation_day(self, caller: str, day: dt.date, pull: Pull) -> DayCosts:
        """What ``caller`` sees for ``day``: its own rows, or its organisation's for a payer."""
        members = organisation_members(caller)
        parts = [self.day_costs(member, day, pull) for member in members]
        rows = tuple(row for part in parts for row in part.rows)
        return DayCosts(day=day, estimated=any(part.estimated for part in parts), rows=rows)


_DEMO_ACCOUNTS = frozenset(
    number
    for tenant in DEMO_TENANTS
    for account in tenant.accounts
    for number in (account.number, *account.linked)
)


def _draw(seed: int, *parts: object) -> float:
    """A deterministic number in [0, 1) that leaves the profile's random stream untouched."""
    text = ":".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def _demo_incidents(seed: int, account_number: str, lines: list[CostLine]) -> tuple[Anomaly, ...]:
    """A spike of 1-3 days every 4-7 weeks on one of the account's costliest lines."""
    costliest = sorted(range(len(lines)), key=lambda i: -lines[i].base_daily_cost)
    candidates = costliest[:_DEMO_INCIDENT_LINES]
    incidents = []
    start = DEMO_INCIDENTS_FROM + dt.timedelta(days=int(_draw(seed, account_number, "first") * 21))
    count = 0
    while start < DEMO_INCIDENTS_UNTIL:
        draws = [_draw(seed, account_number, count, what) for what in ("line", "days", "x", "gap")]
        incidents.append(
            Anomaly(
                line_index=candidates[int(draws[0] * len(candidates))],
                start=start,
                days=1 + int(draws[1] * 3),
                factor=2.5 + 2.5 * draws[2],
            )
        )
        start += dt.timedelta(days=28 + int(draws[3] * 21))
        count += 1
    return tuple(incidents)


def _negative_row(account: str, service: str, usage_type: str, amount: float) -> CostRow:
    negative = _amount(-abs(amount))
    return CostRow(
        linked_account=account,
        service=service,
        usage_type=usage_type,
        unit=_NO_UNIT,
        unblended=negative,
        amortized=negative,
        net_unblended=negative,
        net_amortized=negative,
        usage=_ZERO,
    )
