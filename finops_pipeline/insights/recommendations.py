"""Provider-neutral savings recommendations, and refreshing a stored set from a fresh one.

Every provider's recommender (AWS rightsizing and Savings Plans, Azure Advisor, GCP
Recommender) becomes :class:`Recommendation` records. A refresh fetches an account's complete
current set from one provider, and :func:`plan_refresh` compares it with what is stored:

* **new**: never seen before; first and last seen now.
* **updated**: still there, but what it says changed (kind, current, recommended, savings or
  currency); last seen now, first seen kept.
* **unchanged**: still there and saying the same; last seen now. The newest raw payload is
  kept, since providers restamp ids and timestamps on every generation.
* **reopened**: resolved earlier and back now; open again, first seen kept.
* **resolved**: open but missing from the fresh set; marked resolved now, never deleted, last
  seen left at the last refresh that returned it.

A recommendation's identity is (provider, account, source, resource id): a provider-chosen
recommendation id is not stable across generations, the resource it is about is.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, NamedTuple

from finops_pipeline.errors import FinopsError, ProviderDataError

#: Kinds shared by every provider.
KIND_RIGHTSIZE = "rightsize"
KIND_TERMINATE = "terminate"
KIND_COMMITMENT = "commitment_purchase"


class RecommendationKey(NamedTuple):
    """What makes two recommendations the same one across refreshes."""

    provider: str
    account: str
    source: str
    resource_id: str


@dataclass(frozen=True)
class Recommendation:
    """One provider recommendation, normalised.

    Attributes:
        provider: ``aws``, ``azure`` or ``gcp``.
        account: The provider account the recommendations were fetched for (the refresh's
            scope); a resource in a member account of a payer is listed under the payer.
        source: The provider's recommender, e.g. ``rightsizing`` or ``savings_plans``.
        kind: What to do: :data:`KIND_RIGHTSIZE`, :data:`KIND_TERMINATE`,
            :data:`KIND_COMMITMENT`, or a provider's own.
        resource_id: What it is about, stable across refreshes (an instance id, a
            commitment's type and term).
        current: What there is now, for a person to read.
        recommended: What to change it to, for a person to read.
        estimated_monthly_savings: The provider's estimate, exact.
        currency: ISO code of the savings, upper-case.
        raw: The provider's own payload for this recommendation, JSON-serialisable.
    """

    provider: str
    account: str
    source: str
    kind: str
    resource_id: str
    current: str
    recommended: str
    estimated_monthly_savings: Decimal
    currency: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("provider", "account", "source", "kind", "resource_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ProviderDataError(f"A recommendation has no {name.replace('_', ' ')}.")
        savings = self.estimated_monthly_savings
        if not isinstance(savings, Decimal) or not savings.is_finite():
            raise ProviderDataError(
                f"Recommendation {self.resource_id} has no valid estimated savings ({savings!r})."
            )
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ProviderDataError(
                f"Recommendation {self.resource_id} has currency {self.currency!r}, "
                "not an upper-case ISO code."
            )
        try:
            json.dumps(self.raw)
        except (TypeError, ValueError):
            raise ProviderDataError(
                f"Recommendation {self.resource_id}'s raw payload is not JSON."
            ) from None

    @property
    def key(self) -> RecommendationKey:
        return RecommendationKey(self.provider, self.account, self.source, self.resource_id)

    def says_the_same_as(self, other: Recommendation) -> bool:
        """Whether both recommend the same thing; the raw payload is not compared."""
        return (
            self.kind,
            self.current,
            self.recommended,
            self.estimated_monthly_savings,
            self.currency,
        ) == (
            other.kind,
            other.current,
            other.recommended,
            other.estimated_monthly_savings,
            other.currency,
        )


@dataclass(frozen=True)
class StoredRecommendation:
    """A recommendation as stored, with when it was first and last seen and whether resolved."""

    recommendation: Recommendation
    first_seen: dt.datetime
    last_seen: dt.datetime
    resolved_at: dt.datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def key(self) -> RecommendationKey:
        return self.recommendation.key


@dataclass(frozen=True)
class RefreshPlan:
    """What a refresh changes, each as the state to store; see the module's definitions."""

    new: tuple[StoredRecommendation, ...] = ()
    updated: tuple[StoredRecommendation, ...] = ()
    unchanged: tuple[StoredRecommendation, ...] = ()
    reopened: tuple[StoredRecommendation, ...] = ()
    resolved: tuple[StoredRecommendation, ...] = ()

    @property
    def to_store(self) -> tuple[StoredRecommendation, ...]:
        """Every state to write, in key order; resolved ones that stayed resolved are absent."""
        states = (*self.new, *self.updated, *self.unchanged, *self.reopened, *self.resolved)
        return tuple(sorted(states, key=lambda state: state.key))

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "reopened": len(self.reopened),
            "resolved": len(self.resolved),
        }


class StaleRefreshError(FinopsError):
    """A refresh older than the stored set would move last-seen times backwards."""


def plan_refresh(
    stored: Iterable[StoredRecommendation],
    fresh: Iterable[Recommendation],
    *,
    provider: str,
    account: str,
    seen_at: dt.datetime,
) -> RefreshPlan:
    """Compare one (provider, account)'s stored recommendations with a complete fresh set.

    Args:
        stored: Every stored recommendation of this provider and account, open or resolved.
        fresh: The provider's complete current set for the account.
        provider: The refresh's provider.
        account: The refresh's account.
        seen_at: When the fresh set was fetched (timezone-aware).

    Raises:
        ValueError: a record belongs to another provider or account, or ``seen_at`` is naive.
        ProviderDataError: the fresh set holds one key twice with different content.
        StaleRefreshError: ``seen_at`` is before a stored last-seen time.
    """
    if seen_at.tzinfo is None or seen_at.utcoffset() is None:
        raise ValueError("seen_at must be timezone-aware")
    scope = (provider, account)
    previous: dict[RecommendationKey, StoredRecommendation] = {}
    for state in stored:
        _check_scope(state.key, scope)
        if state.last_seen > seen_at:
            raise StaleRefreshError(
                f"A refresh at {seen_at.isoformat()} is older than the stored one at "
                f"{state.last_seen.isoformat()} for {provider} account {account}; "
                "nothing was changed. Run the refresh again."
            )
        previous[state.key] = state
    current: dict[RecommendationKey, Recommendation] = {}
    for recommendation in fresh:
        _check_scope(recommendation.key, scope)
        seen = current.get(recommendation.key)
        if seen is not None and not seen.says_the_same_as(recommendation):
            raise ProviderDataError(
                f"{provider} returned two different {recommendation.source} recommendations "
                f"for {recommendation.resource_id} in account {account}; nothing was changed."
            )
        current[recommendation.key] = recommendation

    new, updated, unchanged, reopened, resolved = [], [], [], [], []
    for key in sorted(current):
        recommendation = current[key]
        state = previous.get(key)
        if state is None:
            new.append(StoredRecommendation(recommendation, seen_at, seen_at))
        elif not state.is_open:
            reopened.append(StoredRecommendation(recommendation, state.first_seen, seen_at))
        elif state.recommendation.says_the_same_as(recommendation):
            unchanged.append(replace(state, recommendation=recommendation, last_seen=seen_at))
        else:
            updated.append(replace(state, recommendation=recommendation, last_seen=seen_at))
    for key in sorted(previous):
        state = previous[key]
        if key not in current and state.is_open:
            resolved.append(replace(state, resolved_at=seen_at))
    return RefreshPlan(
        new=tuple(new),
        updated=tuple(updated),
        unchanged=tuple(unchanged),
        reopened=tuple(reopened),
        resolved=tuple(resolved),
    )


def _check_scope(key: RecommendationKey, scope: tuple[str, str]) -> None:
    if (key.provider, key.account) != scope:
        raise ValueError(
            f"a {key.provider} recommendation of account {key.account} was passed to the "
            f"refresh of {scope[0]} account {scope[1]}"
        )
