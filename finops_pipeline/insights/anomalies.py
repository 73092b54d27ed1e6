"""Cost anomalies: (account, service, day) points far from a robust, weekday-aware baseline.

The detector reads ``cost_data`` rows (one per usage type) and works on each service's daily
*gross* cost: the sum of its non-negative rows. Credits and refunds are negative rows; a refund
landing on one day or a credit programme ending is a billing event, not a change in what is
running, and would otherwise read as a drop or a spike.

A usage type that spikes shows up as its service spiking by the usage type's extra cost. So a
spike in a small usage type of a large service is only flagged when that extra cost is material
for the service as a whole (see :class:`DetectorConfig`): the point is the service, and a team
acts on dollars moved at that level.

For each point, the baseline is the :attr:`DetectorConfig.window_days` days before it (the point
itself excluded), so a spike never hides itself:

1. weekday profile: each day of the window over its own week's median, then the median per
   weekday (a change of level inside the window does not bend the profile);
2. level: the median of the window's values divided by their weekday's profile;
3. expected = level × the point's weekday profile; scale = 1.4826 × the median absolute
   deviation of the deseasonalised window (a robust standard deviation), times the profile,
   floored at :attr:`DetectorConfig.min_scale_fraction` of the expected value;
4. score = (actual − expected) / scale; impact = actual − expected.

A point is flagged when its score, its relative change and its impact all pass their
thresholds on a service above the tiny-service floors. Once the
:attr:`DetectorConfig.confirm_days` days after it exist, it must also depart in the same way
from *their* level: a change that lasts is a new level, not an anomaly (this is what keeps a
new workload from raising a fortnight of alarms). Until then the point is reported with
``confirmed`` False.

Medians keep an earlier spike inside the window from inflating the baseline. Everything is
plain arithmetic on sorted inputs, so the same rows always give the same anomalies.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from finops_pipeline.errors import ConfigurationError

SPIKE = "spike"
DROP = "drop"
#: ``cost_anomalies.source`` of this detector's anomalies; a provider's own use theirs.
DETECTOR_SOURCE = "finops_detector"
#: Turns a median absolute deviation into a standard deviation for normal noise.
_MAD_TO_SIGMA = 1.4826
_WEEK = 7
#: Series evaluated together; bounds the memory of the sliding windows.
_CHUNK_SERIES = 256

#: Columns of :func:`aggregate_service_days`' result, after the account column.
SERVICE_DAY_COLUMNS: tuple[str, ...] = ("service", "currency", "date", "cost")
#: Columns of :func:`detect_anomalies`' result, after the account column.
ANOMALY_COLUMNS: tuple[str, ...] = (
    "service",
    "currency",
    "date",
    "expected",
    "actual",
    "impact",
    "score",
    "direction",
    "confirmed",
)


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the anomaly detector; a point is flagged only if it passes all of them.

    Attributes:
        window_days: Days of history before a point that form its baseline (whole weeks).
        min_history_days: Fewest days with data in the window before a point is judged.
        score_threshold: Robust z-score a point must reach, either way.
        min_relative_change: |impact| / expected must reach this (0.3: 30% off the baseline).
        min_impact: |impact| in the account's currency must reach this.
        min_daily_cost: Tiny-service floor: the larger of expected and actual must reach it.
        min_share: Tiny-service floor relative to the account: the larger of expected and
            actual must reach this share of the account's expected daily total.
        min_scale_fraction: The scale is at least this share of the expected value, so a
            service flat to the cent does not turn every small change into a huge score.
        confirm_days: Days after a point that show whether it was an anomaly or the start of
            a new level: once they exist, a point must also depart from their median level.
    """

    window_days: int = 28
    min_history_days: int = 21
    score_threshold: float = 6.0
    min_relative_change: float = 0.3
    min_impact: float = 5.0
    min_daily_cost: float = 10.0
    min_share: float = 0.005
    min_scale_fraction: float = 0.03
    confirm_days: int = 14

    def __post_init__(self) -> None:
        if self.window_days < _WEEK or self.window_days % _WEEK:
            raise ConfigurationError(
                f"window_days must be a positive number of whole weeks, got {self.window_days}"
            )
        if not 1 <= self.min_history_days <= self.window_days:
            raise ConfigurationError(
                f"min_history_days must be between 1 and window_days ({self.window_days})"
            )
        for name in (
            "score_threshold",
            "min_relative_change",
            "min_impact",
            "min_daily_cost",
            "min_share",
            "min_scale_fraction",
        ):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative number, got {value!r}")
        if self.confirm_days < 1:
            raise ConfigurationError(f"confirm_days must be at least 1, got {self.confirm_days}")
        if self.min_scale_fraction <= 0:
            raise ConfigurationError("min_scale_fraction must be above zero")


def aggregate_service_days(
    costs: pd.DataFrame,
    *,
    account_column: str = "cloud_account_id",
    cost_column: str = "unblended_cost",
) -> pd.DataFrame:
    """Each (account, service, currency, day)'s gross cost: its non-negative rows summed.

    Args:
        costs: ``cost_data`` rows, or any frame with the account column, ``service``,
            ``date``, ``currency`` and the cost column (``Decimal`` or float amounts).
        account_column: The column naming the account.
        cost_column: The amount to measure.

    Returns:
        One row per (account, service, currency, date), columns ``account_column`` then
        :data:`SERVICE_DAY_COLUMNS`, sorted; ``cost`` is a float.
    """
    required = [account_column, "service", "currency", "date", cost_column]
    missing = [column for column in required if column not in costs.columns]
    if missing:
        raise ValueError(f"cost rows lack the column(s) {', '.join(missing)}")
    keys = [account_column, "service", "currency", "date"]
    if costs.empty:
        return pd.DataFrame(columns=[account_column, *SERVICE_DAY_COLUMNS])
    frame = costs[required].copy()
    frame["cost"] = pd.to_numeric(frame[cost_column].astype(float))
    frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
    gross = frame[frame["cost"] >= 0]
    summed = gross.groupby(keys, sort=True, as_index=False)["cost"].sum()
    return summed[[account_column, *SERVICE_DAY_COLUMNS]].reset_index(drop=True)


def detect_anomalies(
    costs: pd.DataFrame,
    config: DetectorConfig | None = None,
    *,
    account_column: str = "cloud_account_id",
    cost_column: str = "unblended_cost",
) -> pd.DataFrame:
    """Flag (account, service, day) points whose gross cost departs from their baseline.

    Args:
        costs: ``cost_data`` rows (see :func:`aggregate_service_days`).
        config: The thresholds; defaults tuned on the sandbox for few false alarms.
        account_column: The column naming the account; it keys the result too.
        cost_column: The amount to measure.

    Returns:
        One row per anomaly, columns ``account_column`` then :data:`ANOMALY_COLUMNS`, sorted by
        account, date and service. ``date`` is a ``datetime.date``; ``expected``, ``actual``
        and ``impact`` (actual − expected) are in the row's currency; ``direction`` is
        :data:`SPIKE` or :data:`DROP`.
    """
    scored = score_service_days(
        costs, config, account_column=account_column, cost_column=cost_column
    )
    flagged = scored.loc[scored["flagged"].astype(bool), [account_column, *ANOMALY_COLUMNS]]
    return flagged.reset_index(drop=True)


def score_service_days(
    costs: pd.DataFrame,
    config: DetectorConfig | None = None,
    *,
    account_column: str = "cloud_account_id",
    cost_column: str = "unblended_cost",
) -> pd.DataFrame:
    """Every judged (account, service, day) with its baseline, score and whether it is flagged.

    Points without enough history (a service's first weeks) are left out. The columns are
    those of :func:`detect_anomalies` plus ``scale`` (the robust deviation the score divides
    by), ``expected_later`` (the level of the following days, NaN until they exist) and
    ``flagged`` (bool).
    """
    config = config or DetectorConfig()
    daily = aggregate_service_days(costs, account_column=account_column, cost_column=cost_column)
    columns = [account_column, *ANOMALY_COLUMNS, "scale", "expected_later", "flagged"]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    parts = [
        _score_chunk(chunk, config, account_column)
        for chunk in _series_chunks(daily, account_column)
    ]
    scored = pd.concat([part for part in parts if not part.empty] or [parts[0]])
    if scored.empty:
        return pd.DataFrame(columns=columns)
    scored = _apply_floors(scored, config, account_column)
    scored = scored.sort_values([account_column, "date", "service", "currency"], kind="stable")
    scored["date"] = scored["date"].dt.date
    return scored[columns].reset_index(drop=True)


def _series_chunks(daily: pd.DataFrame, account_column: str) -> Iterator[pd.DataFrame]:
    """Whole accounts at a time, about :data:`_CHUNK_SERIES` series each."""
    series_per_account = daily.groupby(account_column, sort=True)["service"].nunique()
    batch: list[object] = []
    count = 0
    for account, series in series_per_account.items():
        batch.append(account)
        count += int(series)
        if count >= _CHUNK_SERIES:
            yield daily[daily[account_column].isin(batch)]
            batch, count = [], 0
    if batch:
        yield daily[daily[account_column].isin(batch)]


def _score_chunk(daily: pd.DataFrame, config: DetectorConfig, account_column: str) -> pd.DataFrame:
    keys = [account_column, "service", "currency"]
    wide = daily.pivot_table(index=keys, columns="date", values="cost", aggfunc="sum")
    wide = wide.reindex(columns=pd.date_range(wide.columns.min(), wide.columns.max(), freq="D"))
    values = wide.to_numpy(dtype=float)
    dates = wide.columns
    # A service without rows on a day its account has rows for cost nothing that day (it was
    # idle), once it has appeared. Days before it appeared, and days the account has no rows
    # at all for (not loaded yet, or lost), are unknown rather than zero.
    observed_since = np.argmax(~np.isnan(values), axis=1)
    loaded = (
        daily.assign(loaded=True)
        .pivot_table(index=account_column, columns="date", values="loaded", aggfunc="any")
        .reindex(columns=dates)
        .notna()
    )
    account_loaded = loaded.loc[wide.index.get_level_values(0)].to_numpy()
    positions = np.arange(values.shape[1])
    known = account_loaded & (positions >= observed_since[:, None])
    values = np.where(known & np.isnan(values), 0.0, values)
    values = np.where(known, values, np.nan)

    window = config.window_days
    if values.shape[1] <= window:
        return pd.DataFrame()
    # history[:, j] is the window of days j .. j+window-1, the baseline of day j+window.
    history = sliding_window_view(values, window, axis=1)[:, :-1, :]
    actual = values[:, window:]
    expected, scale, profile = _baseline(history, config)
    enough = (np.sum(~np.isnan(history), axis=2) >= config.min_history_days) & ~np.isnan(actual)
    expected = np.where(enough, expected, np.nan)
    later = _later_level(values, profile, config)

    judged = ~np.isnan(expected)
    rows, columns = np.nonzero(judged)
    index = wide.index.to_frame(index=False).iloc[rows].reset_index(drop=True)
    return index.assign(
        date=dates[columns + window],
        expected=expected[rows, columns],
        actual=actual[rows, columns],
        scale=scale[rows, columns],
        expected_later=later[rows, columns],
    )


def _baseline(
    history: np.ndarray, config: DetectorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected value, robust scale and weekday profile for each window ``history[s, t, :]``.

    ``profile[s, t, k]`` is the weekday profile of the weekday ``k`` days after point t's.
    """
    series, points, window = history.shape
    weeks = window // _WEEK
    # The window starts on the point's own weekday (it is whole weeks long), so position k of
    # each week is k days after that weekday.
    by_weekday = history.reshape(series, points, weeks, _WEEK)
    # All-NaN slices (a service's first days) are expected; their result is NaN.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        # Each day relative to its own week's median, so a change of level inside the window
        # does not bend the weekday profile.
        week_median = _nanmedian(by_weekday, axis=3)
        relative = by_weekday / np.where(week_median > 0, week_median, np.nan)[..., None]
        profile = _nanmedian(relative, axis=2)
        overall = _nanmedian(history, axis=2)
        # A window without a week of spend has no shape; treat it as flat.
        profile = np.where(np.isnan(profile) & (overall[..., None] >= 0), 1.0, profile)
        usable = np.where(profile > 0, profile, np.nan)
        deseasonalised = (by_weekday / usable[:, :, None, :]).reshape(series, points, window)
        level = _nanmedian(deseasonalised, axis=2)
        spread = _nanmedian(np.abs(deseasonalised - level[..., None]), axis=2)
        # A weekday that always costs nothing is expected to cost nothing.
        own_profile = np.where(np.isnan(profile[..., 0]), 1.0, profile[..., 0])
        level = np.where(np.isnan(level), overall, level)
        expected = level * own_profile
        scale = np.maximum(
            _MAD_TO_SIGMA * np.nan_to_num(spread) * own_profile,
            config.min_scale_fraction * expected,
        )
    # The floor for a baseline of zero: a cent, so a service waking up scores very high.
    scale = np.where(scale > 0, scale, 0.01)
    return expected, scale, profile


def _nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    """The median along ``axis`` ignoring NaN (NaN where all are NaN).

    Same result as ``np.nanmedian``, by one vectorised sort: NaN sorts last, so the middle
    of each slice's ``count`` real values sits at (count - 1) // 2 and count // 2.
    """
    ordered = np.sort(np.moveaxis(values, axis, -1), axis=-1)
    count = np.sum(~np.isnan(ordered), axis=-1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[..., None], axis=-1)
    high = np.take_along_axis(ordered, (count // 2)[..., None], axis=-1)
    # An all-NaN slice has count 0 and picks two NaNs.
    high = np.where(count[..., None] > 0, high, np.nan)
    return ((low + high) / 2.0)[..., 0]


def _later_level(values: np.ndarray, profile: np.ndarray, config: DetectorConfig) -> np.ndarray:
    """What each judged point would be expected to cost at the level of the days after it.

    The median of the next :attr:`DetectorConfig.confirm_days` days, deseasonalised with the
    point's own weekday profile; NaN where fewer days have data yet.
    """
    series, points, _ = profile.shape
    span = config.confirm_days
    window = config.window_days
    later = np.full((series, points), np.nan)
    # following[:, i] holds days i .. i+span-1; point j+window is followed by days from j+window+1.
    following = sliding_window_view(values, span, axis=1)[:, window + 1 :, :]
    available = following.shape[1]
    if available <= 0:
        return later
    offsets = (np.arange(1, span + 1)) % _WEEK
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        shape = profile[:, :available, :][:, :, offsets]
        usable = np.where(shape > 0, shape, np.nan)
        level = _nanmedian(following / usable, axis=2)
        complete = np.sum(~np.isnan(following), axis=2) >= span
        own = profile[:, :available, 0]
        own = np.where(np.isnan(own), 1.0, own)
        later[:, :available] = np.where(complete, level * own, np.nan)
    return later


def _apply_floors(
    scored: pd.DataFrame, config: DetectorConfig, account_column: str
) -> pd.DataFrame:
    scored = scored.copy()
    scored["impact"] = scored["actual"] - scored["expected"]
    scored["score"] = scored["impact"] / scored["scale"]
    account_day_total = scored.groupby([account_column, "currency", "date"])["expected"].transform(
        "sum"
    )
    larger = np.maximum(scored["expected"], scored["actual"])
    departs = _departs(scored["actual"], scored["expected"], scored["scale"], config)
    later_known = scored["expected_later"].notna()
    departs_later = _departs(scored["actual"], scored["expected_later"], scored["scale"], config)
    same_way = np.sign(scored["actual"] - scored["expected_later"]) == np.sign(scored["impact"])
    scored["confirmed"] = later_known
    scored["flagged"] = (
        departs
        & (~later_known | (departs_later & same_way))
        & (larger >= config.min_daily_cost)
        & (larger >= config.min_share * account_day_total)
    )
    scored["direction"] = np.where(scored["impact"] >= 0, SPIKE, DROP)
    return scored


def _departs(
    actual: pd.Series, expected: pd.Series, scale: pd.Series, config: DetectorConfig
) -> pd.Series:
    magnitude = (actual - expected).abs()
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(expected > 0, magnitude / expected, np.inf)
    return (
        (magnitude / scale >= config.score_threshold)
        & (relative >= config.min_relative_change)
        & (magnitude >= config.min_impact)
    )
