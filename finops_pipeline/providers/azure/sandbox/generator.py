"""Deterministic daily costs of synthetic Azure subscriptions.

Every value is a pure function of (seed, subscription id, day, pull), as in the AWS sandbox:
each subscription uses a stable set of services and meters, grows over time, costs less at
weekends, and may hold a one-year VM reservation. A reservation shows as Azure shows it: in
``ActualCost`` the covered usage is cheaper and the monthly purchase appears on the 1st under
its own meter; in ``AmortizedCost`` the purchase is absent and the covered usage carries its
share of it. Days of a month that has not closed at the pull (until the 5th of the next month)
move from one pull to the next, and amounts carry 18 decimal places, more than a float keeps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import numpy as np

from finops_pipeline.providers.aws.sandbox.generator import Pull
from finops_pipeline.providers.azure.sandbox.catalogue import (
    RESERVATION_PURCHASE_METER,
    RESERVED_SERVICE,
    SERVICES,
)

DEFAULT_SEED = 20240101
EPOCH = dt.date(2024, 1, 1)
#: Share of a full day that today's late-arriving data holds.
PARTIAL_DAY_FRACTION = 0.4
#: How far an open month's day moves between pulls, either way.
RESTATEMENT_SPREAD = 0.04
#: A month's costs change until this day of the following month.
MONTH_CLOSE_DAY = 5
#: Reserved capacity costs this share of pay-as-you-go.
RESERVATION_PRICE_RATIO = 0.62

_PROFILE_STREAM = 11
_DAY_STREAM = 12
_RESTATEMENT_STREAM = 13
_DIGITS_STREAM = 14
_QUANTUM = Decimal("1e-18")


@dataclass(frozen=True)
class CostLine:
    """One (service, meter) a subscription pays for."""

    service: str
    meter: str
    unit: str
    base_daily_cost: float
    units_per_dollar: float
    weekend_factor: float
    active_from: dt.date


@dataclass(frozen=True)
class Reservation:
    """A one-year reservation covering part of one line's usage from ``start``."""

    line_index: int
    coverage: float
    start: dt.date
    monthly_payment: float


@dataclass(frozen=True)
class SubscriptionProfile:
    """Everything fixed about one subscription."""

    subscription_id: str
    lines: tuple[CostLine, ...]
    growth_per_year: float
    reservation: Reservation | None


@dataclass(frozen=True)
class AzureCostRow:
    """One (service, meter) on one day. ``None``: the row is absent from that cost type."""

    service: str
    meter: str
    actual: Decimal | None
    amortized: Decimal | None
    usage_quantity: Decimal


def _subscription_int(subscription_id: str) -> int:
    return int(subscription_id.replace("-", ""), 16) % (2**63)


def month_is_open(day: dt.date, as_of: dt.date) -> bool:
    """Whether ``day``'s month can still change when read on ``as_of``."""
    following = dt.date(day.year + day.month // 12, day.month % 12 + 1, MONTH_CLOSE_DAY)
    return as_of <= following


class AzureSandboxGenerator:
    """Daily costs of any subscription id, deterministic from the seed."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self._profile = lru_cache(maxsize=1024)(self._build_profile)

    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    def profile(self, subscription_id: str) -> SubscriptionProfile:
        return self._profile(subscription_id.lower())

    def _build_profile(self, subscription_id: str) -> SubscriptionProfile:
        rng = self._rng(_PROFILE_STREAM, _subscription_int(subscription_id))
        popularity = np.array([service.popularity for service in SERVICES])
        count = int(rng.integers(8, len(SERVICES) + 1))
        chosen = sorted(
            rng.choice(len(SERVICES), size=count, replace=False, p=popularity / popularity.sum())
        )
        size = float(rng.lognormal(0.0, 0.7))
        lines: list[CostLine] = []
        for index in chosen:
            service = SERVICES[index]
            weights = sum(meter.weight for meter in service.meters)
            service_cost = service.daily_scale * size * float(rng.lognormal(0.0, 0.5))
            for meter in service.meters:
                late = rng.random() < 0.1
                lines.append(
                    CostLine(
                        service=service.name,
                        meter=meter.name,
                        unit=meter.unit,
                        base_daily_cost=service_cost * meter.weight / weights,
                        units_per_dollar=meter.units_per_dollar,
                        weekend_factor=service.weekend_factor,
                        active_from=EPOCH
                        + dt.timedelta(days=int(rng.integers(30, 600)) if late else 0),
                    )
                )
        reserved = [i for i, line in enumerate(lines) if line.service == RESERVED_SERVICE]
        reservation = None
        if reserved and rng.random() < 0.75:
            line_index = max(reserved, key=lambda i: lines[i].base_daily_cost)
            coverage = float(rng.uniform(0.4, 0.9))
            reservation = Reservation(
                line_index=line_index,
                coverage=coverage,
                start=dt.date(2024, int(rng.integers(1, 13)), 1),
                monthly_payment=lines[line_index].base_daily_cost
                * coverage
                * RESERVATION_PRICE_RATIO
                * 30.4,
            )
        return SubscriptionProfile(
            subscription_id=subscription_id,
            lines=tuple(lines),
            growth_per_year=float(rng.uniform(0.05, 0.5)),
            reservation=reservation,
        )

    def day_rows(self, subscription_id: str, day: dt.date, pull: Pull) -> tuple[AzureCostRow, ...]:
        """The subscription's rows for ``day`` as read at ``pull``; nothing after ``as_of``."""
        if day > pull.as_of:
            return ()
        subscription_id = subscription_id.lower()
        profile = self.profile(subscription_id)
        number = _subscription_int(subscription_id)
        count = len(profile.lines)
        noise = self._rng(_DAY_STREAM, number, day.toordinal()).uniform(0.9, 1.1, count)
        if month_is_open(day, pull.as_of):
            restated = self._rng(
                _RESTATEMENT_STREAM,
                number,
                day.toordinal(),
                pull.as_of.toordinal(),
                pull.generation,
            )
            noise = noise * (1.0 + restated.uniform(-RESTATEMENT_SPREAD, RESTATEMENT_SPREAD, count))
        digits = self._rng(_DIGITS_STREAM, number, day.toordinal()).integers(
            0, 10**6, 3 * count + 1
        )
        trend = (1.0 + profile.growth_per_year) ** ((day - EPOCH).days / 365.25)
        if day == pull.as_of:
            trend *= PARTIAL_DAY_FRACTION
        weekend = day.weekday() >= 5
        reservation = profile.reservation
        rows: list[AzureCostRow] = []
        for index, line in enumerate(profile.lines):
            if day < line.active_from:
                continue
            cost = line.base_daily_cost * trend * float(noise[index])
            if weekend:
                cost *= line.weekend_factor
            usage = cost * line.units_per_dollar
            actual, amortized = cost, cost
            if (
                reservation is not None
                and reservation.line_index == index
                and day >= reservation.start
            ):
                covered = cost * reservation.coverage
                actual = cost - covered
                amortized = actual + covered * RESERVATION_PRICE_RATIO
            extra = digits[3 * index : 3 * index + 3]
            rows.append(
                AzureCostRow(
                    service=line.service,
                    meter=line.meter,
                    actual=_amount(actual, int(extra[0])),
                    amortized=_amount(amortized, int(extra[1])),
                    usage_quantity=_amount(usage, int(extra[2])),
                )
            )
        if reservation is not None and day >= reservation.start and day.day == 1:
            rows.append(
                AzureCostRow(
                    service=RESERVED_SERVICE,
                    meter=RESERVATION_PURCHASE_METER,
                    actual=_amount(reservation.monthly_payment, int(digits[-1])),
                    amortized=None,
                    usage_quantity=Decimal(1),
                )
            )
        return tuple(rows)


def _amount(value: float, extra_digits: int) -> Decimal:
    """12 decimals of the value, then 6 more digits: 18 places, beyond what a float holds."""
    return Decimal(f"{value:.12f}") + Decimal(extra_digits) * _QUANTUM
