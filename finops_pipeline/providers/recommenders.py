"""The seam every cloud's savings recommender fits.

AWS (Cost Explorer rightsizing and Savings Plans) is the first. Azure Advisor's cost
recommendations and GCP Recommender's cost recommenders plug in by implementing
:class:`RecommendationCollector` (usually on the provider's existing resource) and being passed
to the ``cost_recommendations`` asset under their provider name. A collector returns an
account's *complete* current set or raises: a partial set would resolve recommendations that
still stand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.errors import UnsupportedProviderError
from finops_pipeline.insights.recommendations import Recommendation
from finops_pipeline.security.credentials import Credentials


@dataclass
class FetchedRecommendations:
    """One account's recommendations from every source, and the paid requests they took."""

    records: list[Recommendation] = field(default_factory=list)
    #: Billed API requests (each page counts); a tenant's request budget reads this.
    paid_requests: int = 0
    #: Sources skipped for a reason the user can act on (e.g. a feature not enabled).
    notes: list[str] = field(default_factory=list)
    #: Every request made, billed or not (Azure Advisor is free; its requests are counted).
    requests: int = 0
    #: Other provider usage, by metadata name (GCP's location query: ``gcp_bytes_billed``...).
    usage_metrics: dict[str, int] = field(default_factory=dict)
    #: Where the provider was asked, when that differs by account (GCP: the project's zones
    #: and regions), so a person can see why an account has no recommendations of a kind.
    asked_where: str | None = None


class RecommendationCollector(Protocol):
    """Fetches one account's complete current set of savings recommendations."""

    provider: str

    def fetch_recommendations(
        self, account: CloudAccount, credentials: Credentials
    ) -> FetchedRecommendations:
        """Every current recommendation of the account, or a typed ``ProviderError``."""
        ...


def recommender_for(
    provider: str, collectors: Mapping[str, RecommendationCollector]
) -> RecommendationCollector:
    """The recommender registered for ``provider``, or a clear error."""
    try:
        return collectors[provider]
    except KeyError:
        available = ", ".join(sorted(collectors)) or "none"
        raise UnsupportedProviderError(
            f"No recommendations collector for provider {provider!r} yet (available: "
            f"{available}); its accounts get no recommendations until support lands."
        ) from None
