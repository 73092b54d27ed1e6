"""The anomaly detector on hand-built cost rows: what it flags, what it leaves alone, and why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from finops_pipeline.errors import ConfigurationError
from finops_pipeline.insights.anomalies import (
    ANOMALY_COLUMNS,
    DROP,
    SPIKE,
    DetectorConfig,
    aggregate_service_days,
    detect_anomalies,
    score_service_days,
)

START = dt.date(2026, 1, 5)  # a Monday
ACCOUNT = "acct-1"
EC2 = "Amazon Elastic Compute Cloud - Compute"


def day(offset: int) -> dt.date:
    return START + dt.timedelta(days=offset)


def series(
    days: int,
    base: float,
    *,
    seed: int = 1,
    weekend: float = 1.0,
    noise: float = 0.08,
    change: Callable[[int], float] = lambda _: 1.0,
) -> list[float]:
    """A daily cost with uniform noise, a weekend factor, and ``change(offset)`` applied."""
    rng = np.random.default_rng(seed)
    values = []
    for offset in range(days):
        factor = weekend if day(offset).weekday() >= 5 else 1.0
        values.append(base * factor * rng.uniform(1 - noise, 1 + noise) * change(offset))
    return values


def rows(
    values: Iterable[float],
    *,
    account: str = ACCOUNT,
    service: str = EC2,
    usage_type: str = "BoxUsage:m5.large",
    currency: str = "USD",
) -> pd.DataFrame:
    records = [
        {
            "cloud_account_id": account,
            "date": day(offset),
            "service": service,
            "usage_type": usage_type,
            "unblended_cost": Decimal(f"{value:.10f}"),
            "currency": currency,
        }
        for offset, value in enumerate(values)
    ]
    columns = ["cloud_account_id", "date", "service", "usage_type", "unblended_cost", "currency"]
    return pd.DataFrame.from_records(records, columns=columns)


def flagged_days(anomalies: pd.DataFrame) -> list[int]:
    return sorted((d - START).days for d in anomalies["date"])


def test_a_three_day_spike_is_flagged_on_exactly_its_days_with_its_numbers() -> None:
    spike = range(60, 63)
    values = series(90, 200.0, change=lambda i: 3.0 if i in spike else 1.0)

    anomalies = detect_anomalies(rows(values))

    assert list(anomalies.columns) == ["cloud_account_id", *ANOMALY_COLUMNS]
    assert flagged_days(anomalies) == [60, 61, 62]
    assert set(anomalies["direction"]) == {SPIKE}
    assert anomalies["confirmed"].all()  # 14 later days exist and sit at the old level
    for point in anomalies.itertuples():
        offset = (point.date - START).days
        assert point.actual == pytest.approx(values[offset])
        # The point is not part of its own baseline, so the baseline stays near 200.
        assert 180 < point.expected < 220
        assert point.impact == pytest.approx(point.actual - point.expected)
        assert point.score > DetectorConfig().score_threshold


def test_normal_weeks_with_noise_and_growth_raise_nothing() -> None:
    growth = lambda i: 1.0 + 0.004 * i  # noqa: E731  (+40% over the period)
    frames = [
        rows(series(120, base, seed=seed, weekend=weekend, change=growth), service=f"svc-{seed}")
        for seed, (base, weekend) in enumerate(
            [(500.0, 0.7), (80.0, 1.0), (30.0, 0.4), (1200.0, 0.9), (12.0, 1.1)]
        )
    ]
    costs = pd.concat(frames)

    scored = score_service_days(costs)

    assert len(scored) > 400  # points were judged...
    assert not scored["flagged"].any()  # ...and none raised


def test_a_drop_is_flagged_as_a_drop() -> None:
    values = series(80, 300.0, change=lambda i: 0.1 if i in (50, 51) else 1.0)

    anomalies = detect_anomalies(rows(values))

    assert flagged_days(anomalies) == [50, 51]
    assert set(anomalies["direction"]) == {DROP}
    assert (anomalies["impact"] < -200).all()


def test_weekday_profile_sets_each_days_expectation() -> None:
    # Weekends cost 30% of a weekday. Quiet weekends are normal, but a Saturday at weekday
    # level is three times what a Saturday costs.
    saturday = next(i for i in range(56, 70) if day(i).weekday() == 5)
    values = series(
        90,
        400.0,
        weekend=0.3,
        change=lambda i: (1 / 0.3) if i == saturday else 1.0,
    )

    anomalies = detect_anomalies(rows(values))

    assert flagged_days(anomalies) == [saturday]
    [point] = anomalies.itertuples()
    assert point.direction == SPIKE
    assert 100 < point.expected < 140  # a Saturday's 30% of 400


def test_tiny_services_are_ignored_under_the_floor() -> None:
    # $3 a day tripling: $6 more (above the $5 impact floor), but neither the baseline nor
    # the spike reaches the $10/day tiny-service floor.
    spiky = lambda i: 3.0 if i in (60, 61) else 1.0  # noqa: E731
    tiny = rows(series(90, 3.0, change=spiky), service="AWS X-Ray")

    assert detect_anomalies(tiny).empty
    assert flagged_days(detect_anomalies(tiny, DetectorConfig(min_daily_cost=8))) == [60, 61]


def test_a_service_small_against_its_account_is_ignored_by_the_share_floor() -> None:
    spiky = lambda i: 5.0 if i in (60, 61) else 1.0  # noqa: E731
    costs = pd.concat(
        [
            rows(series(90, 20_000.0, seed=2)),
            rows(series(90, 10.0, seed=3, change=spiky), service="Amazon Route 53"),
        ]
    )

    # $40 extra on a $20,000 day: 0.25% of the account, under the default 0.5% share floor.
    assert detect_anomalies(costs).empty
    assert flagged_days(detect_anomalies(costs, DetectorConfig(min_share=0.001))) == [60, 61]


def test_a_usage_type_spike_is_judged_at_service_level_by_its_extra_cost() -> None:
    # Two usage types of one service: a 4x spike in the small one moves the service by its
    # extra cost; the same relative spike in a usage type carrying 2% of the service does not.
    big = rows(series(90, 900.0, seed=4), usage_type="BoxUsage:m5.large")
    visible = rows(
        series(90, 300.0, seed=5, change=lambda i: 4.0 if i in (60, 61) else 1.0),
        usage_type="USW2-BoxUsage:t3.medium",
    )
    hidden = rows(
        series(90, 18.0, seed=6, change=lambda i: 4.0 if i in (70, 71) else 1.0),
        usage_type="SpotUsage:m5.xlarge",
    )

    anomalies = detect_anomalies(pd.concat([big, visible, hidden]))

    assert flagged_days(anomalies) == [60, 61]
    for point in anomalies.itertuples():
        offset = (point.date - START).days
        extra = 3.0 * float(visible["unblended_cost"].iloc[offset]) / 4.0
        assert point.impact == pytest.approx(extra, rel=0.15)


def test_credits_and_refunds_are_not_anomalies() -> None:
    usage = rows(series(90, 250.0))
    refund = rows([0.0] * 55 + [-900.0], usage_type="Refund")
    refund = refund[refund["unblended_cost"] != 0]
    credit = rows(
        [-100.0 if 30 <= i < 70 else 0.0 for i in range(90)],
        usage_type="Credit-PromotionalCredits",
    )
    credit = credit[credit["unblended_cost"] != 0]

    costs = pd.concat([usage, refund, credit])

    assert detect_anomalies(costs).empty
    daily = aggregate_service_days(costs)
    assert daily["cost"].min() > 200  # gross: the negative rows are left out


def test_a_lasting_change_is_a_new_level_once_the_following_days_show_it() -> None:
    # Cost doubles for good on day 60. With 30 days after it, the change is a new level and
    # nothing is flagged; with 3 days after it, those days are flagged, not yet confirmed.
    doubled = lambda i: 2.0 if i >= 60 else 1.0  # noqa: E731
    values = series(90, 150.0, change=doubled)

    assert detect_anomalies(rows(values)).empty

    recent = detect_anomalies(rows(values[:63]))
    assert flagged_days(recent) == [60, 61, 62]
    assert not recent["confirmed"].any()


def test_a_restated_day_updates_its_anomaly() -> None:
    spike = lambda i: 4.0 if i in (60, 61) else 1.0  # noqa: E731
    values = series(90, 200.0, change=spike)
    before = detect_anomalies(rows(values))
    restated = list(values)
    restated[61] = values[61] / 4.0  # the provider restated day 61 back to normal
    restated[62] = values[62] * 4.0  # and moved the usage to day 62

    after = detect_anomalies(rows(restated))

    assert flagged_days(before) == [60, 61]
    assert flagged_days(after) == [60, 62]
    assert after.iloc[1]["actual"] == pytest.approx(restated[62])


def test_results_do_not_depend_on_row_order_or_amount_type() -> None:
    costs = pd.concat(
        [
            rows(series(90, 200.0, change=lambda i: 3.0 if i == 64 else 1.0)),
            rows(series(90, 90.0, seed=9, change=lambda i: 0.2 if i == 70 else 1.0), account="b"),
        ]
    )
    shuffled = costs.sample(frac=1.0, random_state=3)
    as_floats = costs.assign(unblended_cost=costs["unblended_cost"].astype(float))

    expected = detect_anomalies(costs)

    assert len(expected) == 2
    pd.testing.assert_frame_equal(detect_anomalies(shuffled), expected)
    pd.testing.assert_frame_equal(detect_anomalies(as_floats), expected)


def test_accounts_and_currencies_are_separate_series() -> None:
    spike = lambda i: 3.0 if i == 64 else 1.0  # noqa: E731
    costs = pd.concat(
        [
            rows(series(90, 200.0, change=spike), account="a"),
            rows(series(90, 200.0, seed=2), account="b"),
            rows(series(90, 200.0, seed=3), account="a", currency="EUR"),
        ]
    )

    anomalies = detect_anomalies(costs)

    assert anomalies[["cloud_account_id", "currency"]].values.tolist() == [["a", "USD"]]


def test_a_service_idle_for_a_day_counts_as_a_drop_but_its_first_weeks_are_not_judged() -> None:
    values = series(90, 400.0)
    costs = rows(values)
    costs = costs[costs["date"] != day(70)]  # no rows at all that day
    newcomer = rows([0.0] * 40 + series(50, 500.0), service="Amazon Bedrock")
    newcomer = newcomer[newcomer["unblended_cost"] != 0]

    anomalies = detect_anomalies(pd.concat([costs, newcomer]))
    scored = score_service_days(pd.concat([costs, newcomer]))

    assert anomalies[["service", "direction"]].values.tolist() == [[EC2, DROP]]
    assert flagged_days(anomalies) == [70]
    first_judged = scored.loc[scored["service"] == "Amazon Bedrock", "date"].min()
    assert (first_judged - START).days >= 40 + DetectorConfig().min_history_days


def test_a_day_the_account_has_no_rows_for_is_unknown_not_a_drop() -> None:
    costs = pd.concat(
        [rows(series(90, 400.0)), rows(series(90, 90.0, seed=2), service="Amazon S3")]
    )
    missing = costs[costs["date"] != day(70)]  # the whole account: not loaded, or lost

    assert detect_anomalies(missing).empty
    scored = score_service_days(missing)
    assert day(70) not in set(scored["date"])


def test_empty_input_gives_an_empty_result_with_the_columns() -> None:
    empty = rows([])
    assert list(detect_anomalies(empty).columns) == ["cloud_account_id", *ANOMALY_COLUMNS]
    assert detect_anomalies(rows(series(20, 100.0))).empty  # not enough history


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="lack the column\\(s\\) currency"):
        detect_anomalies(rows(series(30, 1.0)).drop(columns=["currency"]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window_days": 30}, "whole weeks"),
        ({"min_history_days": 40}, "min_history_days"),
        ({"score_threshold": -1}, "score_threshold"),
        ({"min_share": float("nan")}, "min_share"),
        ({"min_scale_fraction": 0}, "min_scale_fraction"),
        ({"confirm_days": 0}, "confirm_days"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(
    settings: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DetectorConfig(**settings)  # type: ignore[arg-type]
