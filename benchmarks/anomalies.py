"""Anomaly detection against the sandbox's injected spikes: precision and recall.

Cost rows come straight from the sandbox generator (no database, no Cost Explorer calls), shaped
like ``cost_data``. The generator lists the spikes it injected (one usage type of one account,
a multiplier, a span of days); the detector only sees the rows.

Matching. A flagged (account, service, day) is a *true* point when an injected spike of that
account and service covers the day; every other flagged point is a false alarm.
``precision = true points / flagged points``.

Scope of recall. A spike multiplies one usage type, and the detector judges services, so a spike
is *in scope* when, on at least one of its days, its extra cost is material by the detector's
own thresholds: at least ``min_impact``, at least ``min_relative_change`` of what the service
would have cost without it, on a service above the tiny-service floors, on a day the detector
has enough history to judge. (A 4× spike in a $2/day usage type of a $3,000/day EC2 bill is
not something the detector is meant to report.) The extra cost is read from the data: the
usage type's cost that day × (1 − 1/multiplier).

``recall = in-scope spikes with at least one flagged day / in-scope spikes``: a team hears of a
spike once it is flagged on any of its days. Recall over in-scope spike-days, and over every
injected spike the detector could judge, are reported beside it.

The baseline row is a naive detector measured in the same run: the mean and standard deviation
of the previous 28 days, no weekday profile, same floors, flagging beyond 3 deviations.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import Table
from finops_pipeline.insights.anomalies import (
    DetectorConfig,
    aggregate_service_days,
    score_service_days,
)
from finops_pipeline.providers.aws.sandbox.generator import InjectedAnomaly, Pull, SandboxGenerator

Progress = Callable[[str], Any]

#: The measured window ends here, so the results never depend on today's date.
WINDOW_END = dt.date(2026, 6, 30)
#: Read well after the window, so every day is final (no settling, no partial day).
PULL = Pull(as_of=WINDOW_END + dt.timedelta(days=14), generation=0)
#: Benchmark accounts are drawn from their own range, apart from the accounts used to tune.
FIRST_ACCOUNT = 700_000_000_000
ACCOUNT_COLUMN = "cloud_account_id"


@dataclass(frozen=True)
class SandboxCosts:
    """Cost rows of some sandbox accounts over a window, and the spikes injected into them."""

    rows: pd.DataFrame
    injected: tuple[InjectedAnomaly, ...]
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class Evaluation:
    """How a detector's flags compare with the injected spikes."""

    flagged: int
    true_points: int
    in_scope: int
    in_scope_detected: int
    in_scope_days: int
    in_scope_days_detected: int
    judged: int
    judged_detected: int
    #: Flagged points whose following days already confirm them, and how many are true.
    confirmed_flagged: int | None = None
    confirmed_true: int | None = None

    @property
    def precision(self) -> float:
        return self.true_points / self.flagged if self.flagged else 1.0

    @property
    def confirmed_precision(self) -> float | None:
        if self.confirmed_flagged is None or self.confirmed_true is None:
            return None
        return self.confirmed_true / self.confirmed_flagged if self.confirmed_flagged else 1.0

    @property
    def recall(self) -> float:
        return self.in_scope_detected / self.in_scope if self.in_scope else 1.0

    @property
    def day_recall(self) -> float:
        return self.in_scope_days_detected / self.in_scope_days if self.in_scope_days else 1.0

    @property
    def judged_recall(self) -> float:
        return self.judged_detected / self.judged if self.judged else 1.0


def benchmark_accounts(
    count: int,
    *,
    with_spike_in: tuple[dt.date, dt.date] | None = None,
    generator: SandboxGenerator | None = None,
) -> list[str]:
    """``count`` account numbers from the benchmark range, in order.

    With ``with_spike_in``, only accounts whose profile injects a spike between those days
    (read from the profile, before any data is generated), so a short run still holds spikes.
    """
    generator = generator or SandboxGenerator()
    accounts: list[str] = []
    number = FIRST_ACCOUNT
    while len(accounts) < count:
        account = f"{number:012d}"
        number += 1
        if with_spike_in is not None:
            first, last = with_spike_in
            spikes = generator.injected_anomalies(account)
            if not any(spike.start <= last and spike.last_day >= first for spike in spikes):
                continue
        accounts.append(account)
    return accounts


def sandbox_costs(
    accounts: Sequence[str],
    start: dt.date,
    end: dt.date,
    generator: SandboxGenerator | None = None,
) -> SandboxCosts:
    """The accounts' daily rows from ``start`` to ``end`` inclusive, ``cost_data``-shaped."""
    generator = generator or SandboxGenerator()
    records: list[tuple[str, dt.date, str, str, float]] = []
    for account in accounts:
        day = start
        while day <= end:
            for row in generator.day_costs(account, day, PULL).rows:
                records.append((account, day, row.service, row.usage_type, float(row.unblended)))
            day += dt.timedelta(days=1)
    rows = pd.DataFrame(
        records, columns=[ACCOUNT_COLUMN, "date", "service", "usage_type", "unblended_cost"]
    )
    rows["currency"] = "USD"
    injected = tuple(
        spike
        for account in accounts
        for spike in generator.injected_anomalies(account)
        if spike.start <= end and spike.last_day >= start
    )
    return SandboxCosts(rows=rows, injected=injected, start=start, end=end)


def _spike_days(costs: SandboxCosts) -> pd.DataFrame:
    """One row per injected spike and day inside the window, with the usage type's cost."""
    records = []
    for spike_id, spike in enumerate(costs.injected):
        for offset in range(spike.days):
            day = spike.start + dt.timedelta(days=offset)
            if costs.start <= day <= costs.end:
                records.append(
                    (
                        spike_id,
                        spike.account,
                        spike.service,
                        spike.usage_type,
                        day,
                        spike.multiplier,
                    )
                )
    days = pd.DataFrame(
        records,
        columns=["spike", ACCOUNT_COLUMN, "service", "usage_type", "date", "multiplier"],
    )
    line_cost = costs.rows.groupby([ACCOUNT_COLUMN, "usage_type", "date"], as_index=False)[
        "unblended_cost"
    ].sum()
    days = days.merge(line_cost, on=[ACCOUNT_COLUMN, "usage_type", "date"], how="left")
    days["extra"] = days["unblended_cost"].fillna(0.0) * (1 - 1 / days["multiplier"])
    return days


def evaluate(
    costs: SandboxCosts, flagged: pd.DataFrame, judged: pd.DataFrame, config: DetectorConfig
) -> Evaluation:
    """Compare flagged points with the injected spikes (see the module's matching rules).

    Args:
        costs: The rows and the injected spikes.
        flagged: The detector's anomalies (account, service, date).
        judged: Every (account, service, date) the detector had enough history to judge.
        config: The thresholds that decide which spikes are in scope.
    """
    keys = [ACCOUNT_COLUMN, "service", "date"]
    spike_days = _spike_days(costs)
    daily = aggregate_service_days(costs.rows, account_column=ACCOUNT_COLUMN)
    daily["date"] = daily["date"].dt.date
    account_total = daily.groupby([ACCOUNT_COLUMN, "date"])["cost"].transform("sum")
    daily["account_total"] = account_total
    spike_days = spike_days.merge(
        daily[[*keys, "cost", "account_total"]], on=keys, how="left"
    ).merge(judged[keys].assign(judged=True), on=keys, how="left")
    spike_days["judged"] = spike_days["judged"].fillna(False).astype(bool)
    without = spike_days["cost"] - spike_days["extra"]
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(without > 0, spike_days["extra"] / without, np.inf)
    spike_days["in_scope"] = (
        spike_days["judged"]
        & (spike_days["extra"] >= config.min_impact)
        & (relative >= config.min_relative_change)
        & (spike_days["cost"] >= config.min_daily_cost)
        & (
            spike_days["cost"]
            >= config.min_share * (spike_days["account_total"] - spike_days["extra"])
        )
    )
    flagged_keys = flagged[keys].drop_duplicates().assign(hit=True)
    spike_days = spike_days.merge(flagged_keys, on=keys, how="left")
    spike_days["hit"] = spike_days["hit"].fillna(False).astype(bool)

    true_keys = spike_days[keys].drop_duplicates()
    true_points = len(flagged_keys.merge(true_keys, on=keys, how="inner"))
    confirmed_flagged = confirmed_true = None
    if "confirmed" in flagged.columns:
        confirmed = flagged.loc[flagged["confirmed"].astype(bool), keys].drop_duplicates()
        confirmed_flagged = len(confirmed)
        confirmed_true = len(confirmed.merge(true_keys, on=keys, how="inner"))
    by_spike = spike_days.groupby("spike").agg(
        judged=("judged", "any"), in_scope=("in_scope", "any"), hit=("hit", "any")
    )
    scoped_days = spike_days[spike_days["in_scope"]]
    return Evaluation(
        flagged=len(flagged_keys),
        true_points=true_points,
        in_scope=int(by_spike["in_scope"].sum()),
        in_scope_detected=int((by_spike["in_scope"] & by_spike["hit"]).sum()),
        in_scope_days=len(scoped_days),
        in_scope_days_detected=int(scoped_days["hit"].sum()),
        judged=int(by_spike["judged"].sum()),
        judged_detected=int((by_spike["judged"] & by_spike["hit"]).sum()),
        confirmed_flagged=confirmed_flagged,
        confirmed_true=confirmed_true,
    )


def naive_anomalies(
    rows: pd.DataFrame, config: DetectorConfig, *, deviations: float = 3.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The baseline: previous-28-day mean ± ``deviations`` standard deviations, same floors."""
    daily = aggregate_service_days(rows, account_column=ACCOUNT_COLUMN)
    series = [ACCOUNT_COLUMN, "service", "currency"]
    wide = daily.pivot_table(index="date", columns=series, values="cost", aggfunc="sum")
    wide = wide.asfreq("D")
    # Idle days after a service's first row cost nothing; days before it are unknown.
    started = wide.notna().cummax()
    wide = wide.fillna(0.0).where(started)
    history = wide.shift(1).rolling(config.window_days, min_periods=config.min_history_days)
    actual = wide.to_numpy()
    expected = history.mean().to_numpy()
    deviation = history.std().to_numpy()
    days, columns = np.nonzero(~np.isnan(actual) & ~np.isnan(expected))
    scored = wide.columns.to_frame(index=False).iloc[columns].reset_index(drop=True)
    scored = scored.assign(
        date=wide.index[days],
        actual=actual[days, columns],
        expected=expected[days, columns],
        deviation=deviation[days, columns],
    )
    scored["date"] = scored["date"].dt.date
    impact = scored["actual"] - scored["expected"]
    total = scored.groupby([ACCOUNT_COLUMN, "date"])["expected"].transform("sum")
    larger = np.maximum(scored["expected"], scored["actual"])
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(scored["expected"] > 0, impact.abs() / scored["expected"], np.inf)
    flagged = (
        (impact.abs() > deviations * scored["deviation"])
        & (relative >= config.min_relative_change)
        & (impact.abs() >= config.min_impact)
        & (larger >= config.min_daily_cost)
        & (larger >= config.min_share * total)
    )
    return scored[flagged], scored


def measure(costs: SandboxCosts, config: DetectorConfig | None = None) -> tuple[Evaluation, float]:
    """Run the detector on the rows; its evaluation and the seconds it took."""
    config = config or DetectorConfig()
    started = time.perf_counter()
    scored = score_service_days(costs.rows, config, account_column=ACCOUNT_COLUMN)
    seconds = time.perf_counter() - started
    flagged = scored[scored["flagged"]]
    return evaluate(costs, flagged, scored, config), seconds


def run_anomalies(
    accounts: int, days: int, *, select_spiky: bool = False, progress: Progress = print
) -> Table:
    """Precision and recall of the detector and the naive baseline on sandbox accounts.

    Args:
        accounts: How many sandbox accounts.
        days: Days of history per account, ending at :data:`WINDOW_END`.
        select_spiky: Take only accounts with a spike in the judged part of the window, so a
            short run still has spikes to find (precision is then measured on those accounts).
    """
    config = DetectorConfig()
    start = WINDOW_END - dt.timedelta(days=days - 1)
    generator = SandboxGenerator()
    judged_from = start + dt.timedelta(days=config.window_days)
    numbers = benchmark_accounts(
        accounts,
        with_spike_in=(judged_from, WINDOW_END) if select_spiky else None,
        generator=generator,
    )
    started = time.perf_counter()
    costs = sandbox_costs(numbers, start, WINDOW_END, generator)
    progress(
        f"  anomalies: {len(costs.rows):,} rows for {accounts} accounts x {days} days "
        f"generated in {time.perf_counter() - started:.1f} s"
    )
    ours, ours_seconds = measure(costs, config)
    started = time.perf_counter()
    naive_flagged, naive_judged = naive_anomalies(costs.rows, config)
    naive_seconds = time.perf_counter() - started
    naive = evaluate(costs, naive_flagged, naive_judged, config)
    progress(
        f"  anomalies: precision {ours.precision:.3f}, recall {ours.recall:.3f} "
        f"({ours.in_scope_detected}/{ours.in_scope} in-scope spikes)"
    )
    table = Table(
        title=f"Anomalies: {accounts} sandbox accounts x {days} days, {start}..{WINDOW_END}",
        columns=[
            "detector",
            "flagged points",
            "true points",
            "precision",
            "precision, confirmed",
            "in-scope spikes",
            "found",
            "recall",
            "spike-day recall",
            "recall, all judged spikes",
            "seconds",
        ],
    )
    for name, evaluation, seconds in (
        ("naive: 28-day mean ± 3 sd (baseline)", naive, naive_seconds),
        ("weekday-aware median/MAD (ours)", ours, ours_seconds),
    ):
        table.rows.append(
            [
                name,
                evaluation.flagged,
                evaluation.true_points,
                round(evaluation.precision, 3),
                "-"
                if evaluation.confirmed_precision is None
                else round(evaluation.confirmed_precision, 3),
                evaluation.in_scope,
                evaluation.in_scope_detected,
                round(evaluation.recall, 3),
                round(evaluation.day_recall, 3),
                round(evaluation.judged_recall, 3),
                round(seconds, 2),
            ]
        )
    table.notes.append(
        f"thresholds: score {config.score_threshold}, change ≥ {config.min_relative_change:.0%}"
        f" and ≥ ${config.min_impact:g}, services under ${config.min_daily_cost:g}/day or "
        f"{config.min_share:.1%} of the account ignored; {ours.judged} injected spikes judged"
    )
    if naive.precision:
        table.notes.append(
            f"precision × baseline: {ours.precision / naive.precision:.2f}; "
            f"recall × baseline: {ours.recall / naive.recall if naive.recall else float('inf'):.2f}"
        )
    if select_spiky:
        table.notes.append("accounts chosen for a spike inside the judged window")
    return table
