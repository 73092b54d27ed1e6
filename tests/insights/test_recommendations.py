"""Refreshing stored recommendations from a fresh set: new, updated, unchanged, reopened, resolved."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.insights.recommendations import (
    KIND_RIGHTSIZE,
    KIND_TERMINATE,
    Recommendation,
    RecommendationKey,
    StaleRefreshError,
    StoredRecommendation,
    plan_refresh,
)

ACCOUNT = "123456789012"
WEEK_1 = dt.datetime(2026, 6, 1, 6, tzinfo=dt.UTC)
WEEK_2 = dt.datetime(2026, 6, 8, 6, tzinfo=dt.UTC)
WEEK_3 = dt.datetime(2026, 6, 15, 6, tzinfo=dt.UTC)


def rec(resource: str, savings: str = "10.00", **changes: object) -> Recommendation:
    base = Recommendation(
        provider="aws",
        account=ACCOUNT,
        source="rightsizing",
        kind=KIND_RIGHTSIZE,
        resource_id=resource,
        current="m5.xlarge, US East (N. Virginia)",
        recommended="m5.large",
        estimated_monthly_savings=Decimal(savings),
        currency="USD",
        raw={"CurrentInstance": {"ResourceId": resource}, "GenerationTimestamp": "w1"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def refresh(
    stored: list[StoredRecommendation], fresh: list[Recommendation], at: dt.datetime
) -> list[StoredRecommendation]:
    """Apply a plan the way the table will: write every state it returns, keep the rest."""
    plan = plan_refresh(stored, fresh, provider="aws", account=ACCOUNT, seen_at=at)
    written = {state.key: state for state in plan.to_store}
    kept = {state.key: state for state in stored if state.key not in written}
    return sorted([*kept.values(), *written.values()], key=lambda state: state.key)


def test_a_first_refresh_stores_everything_as_new() -> None:
    plan = plan_refresh(
        [], [rec("i-b"), rec("i-a")], provider="aws", account=ACCOUNT, seen_at=WEEK_1
    )

    assert plan.counts() == {"new": 2, "updated": 0, "unchanged": 0, "reopened": 0, "resolved": 0}
    assert [state.key.resource_id for state in plan.to_store] == ["i-a", "i-b"]
    for state in plan.new:
        assert (state.first_seen, state.last_seen, state.resolved_at) == (WEEK_1, WEEK_1, None)


def test_a_refresh_replaces_the_set_and_resolves_what_disappeared() -> None:
    stored = refresh([], [rec("i-keep"), rec("i-change"), rec("i-gone")], WEEK_1)
    fresh = [
        rec("i-keep", raw={"GenerationTimestamp": "w2"}),
        rec("i-change", savings="25.50", kind=KIND_TERMINATE, recommended="terminate"),
        rec("i-new"),
    ]

    plan = plan_refresh(stored, fresh, provider="aws", account=ACCOUNT, seen_at=WEEK_2)

    assert plan.counts() == {"new": 1, "updated": 1, "unchanged": 1, "reopened": 0, "resolved": 1}
    [new], [updated], [unchanged], [resolved] = (
        plan.new,
        plan.updated,
        plan.unchanged,
        plan.resolved,
    )
    assert new.key.resource_id == "i-new" and new.first_seen == WEEK_2
    assert updated.key.resource_id == "i-change"
    assert (updated.first_seen, updated.last_seen) == (WEEK_1, WEEK_2)
    assert updated.recommendation.estimated_monthly_savings == Decimal("25.50")
    assert updated.recommendation.kind == KIND_TERMINATE
    assert unchanged.key.resource_id == "i-keep"
    assert (unchanged.first_seen, unchanged.last_seen) == (WEEK_1, WEEK_2)
    assert unchanged.recommendation.raw == {"GenerationTimestamp": "w2"}  # newest payload kept
    assert resolved.key.resource_id == "i-gone"
    # Resolved, not deleted: last seen stays at the refresh that last returned it.
    assert (resolved.first_seen, resolved.last_seen, resolved.resolved_at) == (
        WEEK_1,
        WEEK_1,
        WEEK_2,
    )


def test_resolved_recommendations_stay_resolved_and_can_come_back() -> None:
    stored = refresh([], [rec("i-a"), rec("i-b")], WEEK_1)
    stored = refresh(stored, [rec("i-a")], WEEK_2)
    assert [state.resolved_at for state in stored] == [None, WEEK_2]

    # Still gone a week later: nothing to write for it, and it keeps its resolution date.
    plan = plan_refresh(stored, [rec("i-a")], provider="aws", account=ACCOUNT, seen_at=WEEK_3)
    assert plan.counts()["resolved"] == 0
    assert [state.key.resource_id for state in plan.to_store] == ["i-a"]

    # Back again: reopened, first seen kept.
    plan = plan_refresh(
        stored, [rec("i-a"), rec("i-b")], provider="aws", account=ACCOUNT, seen_at=WEEK_3
    )
    [reopened] = plan.reopened
    assert (reopened.first_seen, reopened.last_seen, reopened.resolved_at) == (
        WEEK_1,
        WEEK_3,
        None,
    )


def test_an_empty_fresh_set_resolves_everything_open() -> None:
    stored = refresh([], [rec("i-a"), rec("i-b")], WEEK_1)

    plan = plan_refresh(stored, [], provider="aws", account=ACCOUNT, seen_at=WEEK_2)

    assert plan.counts() == {"new": 0, "updated": 0, "unchanged": 0, "reopened": 0, "resolved": 2}
    assert all(state.resolved_at == WEEK_2 for state in plan.resolved)


def test_the_same_resource_from_another_source_is_another_recommendation() -> None:
    rightsizing = rec("shared-id")
    savings_plan = rec("shared-id", source="savings_plans")

    plan = plan_refresh(
        [], [rightsizing, savings_plan], provider="aws", account=ACCOUNT, seen_at=WEEK_1
    )

    assert len(plan.new) == 2
    assert rightsizing.key == RecommendationKey("aws", ACCOUNT, "rightsizing", "shared-id")


def test_a_repeated_identical_record_is_one_but_a_contradiction_is_refused() -> None:
    plan = plan_refresh(
        [], [rec("i-a"), rec("i-a")], provider="aws", account=ACCOUNT, seen_at=WEEK_1
    )
    assert len(plan.new) == 1

    with pytest.raises(ProviderDataError, match="two different rightsizing recommendations"):
        plan_refresh(
            [],
            [rec("i-a"), rec("i-a", savings="99")],
            provider="aws",
            account=ACCOUNT,
            seen_at=WEEK_1,
        )


def test_records_of_another_account_or_provider_are_refused() -> None:
    with pytest.raises(ValueError, match="account 999999999999 was passed to the refresh"):
        plan_refresh(
            [],
            [rec("i-a", account="999999999999")],
            provider="aws",
            account=ACCOUNT,
            seen_at=WEEK_1,
        )
    stored = refresh([], [rec("i-a")], WEEK_1)
    with pytest.raises(ValueError, match="refresh of azure account"):
        plan_refresh(stored, [], provider="azure", account=ACCOUNT, seen_at=WEEK_2)


def test_an_older_refresh_is_refused_and_naive_times_too() -> None:
    stored = refresh([], [rec("i-a")], WEEK_2)
    with pytest.raises(StaleRefreshError, match="older than the stored one"):
        plan_refresh(stored, [rec("i-a")], provider="aws", account=ACCOUNT, seen_at=WEEK_1)
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_refresh([], [], provider="aws", account=ACCOUNT, seen_at=dt.datetime(2026, 6, 1))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resource_id": " "}, "no resource id"),
        ({"estimated_monthly_savings": Decimal("NaN")}, "no valid estimated savings"),
        ({"estimated_monthly_savings": 10.5}, "no valid estimated savings"),
        ({"currency": "usd"}, "not an upper-case ISO code"),
        ({"raw": {"when": dt.date(2026, 1, 1)}}, "raw payload is not JSON"),
    ],
)
def test_malformed_records_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ProviderDataError, match=message):
        rec("i-a", **changes)


def test_the_raw_payload_stays_out_of_repr_and_equality() -> None:
    one = rec("i-a", raw={"big": "x" * 1000})
    assert "big" not in repr(one)
    assert one == rec("i-a")
