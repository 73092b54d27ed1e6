"""The seam every cloud provider's collector fits.

AWS is the first collector. Azure (Cost Management Query API) and GCP (BigQuery billing export)
plug in by implementing :class:`CostCollector` and registering under their provider name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.errors import UnsupportedProviderError
from finops_pipeline.providers.aws.parsing import ParsedCosts
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.ranges import DateRange


@dataclass(frozen=True)
class FetchedCosts:
    """One account's costs for one date range, as the provider returned them."""

    parsed: ParsedCosts
    paid_requests: int
    #: The provider has no data yet (a new account); the window must be left untouched.
    data_unavailable: bool = False
    pagination_restarts: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def estimated_days(self) -> list[dt.date]:
        return sorted(day for day, estimated in self.parsed.estimated_by_day.items() if estimated)

    @property
    def final_days(self) -> list[dt.date]:
        return sorted(
            day for day, estimated in self.parsed.estimated_by_day.items() if not estimated
        )


@dataclass(frozen=True)
class ProviderTotals:
    """The provider's own cost total per day and currency for one account's window.

    The reconciliation check compares ``cost_data``'s sums with these. A provider asks for them
    in whatever way costs it least: AWS makes one extra ungrouped GetCostAndUsage request
    (``paid_requests`` = 1 per page); a provider whose grouped answer already carries totals
    returns them at ``paid_requests`` = 0.

    Attributes:
        by_day: (day, currency) -> unblended cost, for every day of the window the provider
            answered (zero-cost days included, at 0).
        paid_requests: Paid requests spent getting them.
        estimated_days: Days the provider still marks as estimated.
    """

    by_day: Mapping[tuple[dt.date, str], Decimal]
    paid_requests: int
    estimated_days: frozenset[dt.date] = frozenset()


#: Called with every new SDK client and its endpoint, before first use. The sandbox hooks in
#: here, where resources are bound, so the production clients never import it.
ClientHook = Callable[[Any, str | None], None]


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the pipeline needs to know about one cloud, registered once.

    Attributes:
        name: The provider name stored in ``cloud_accounts.provider``.
        credential_kinds: The ``credential_kind`` values its accounts may store.
        client_hook: Attached to every SDK client the provider builds (the sandbox).
    """

    name: str
    credential_kinds: tuple[str, ...]
    client_hook: ClientHook | None = None


class CostCollector(Protocol):
    """Fetches daily costs, grouped by service and usage type, for one account."""

    provider: str

    def fetch_daily_costs(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> FetchedCosts:
        """Fetch every day of ``window`` (inclusive) in as few paid requests as possible."""
        ...


@runtime_checkable
class ReconcilingCollector(CostCollector, Protocol):
    """A collector that can also report the provider's own totals, for reconciliation.

    Optional: the collection asks for totals only from collectors that implement it.
    """

    def provider_totals(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> ProviderTotals | None:
        """The provider's totals for ``window`` (inclusive), or None when switched off."""
        ...


def collector_for(provider: str, collectors: Mapping[str, CostCollector]) -> CostCollector:
    """The collector registered for ``provider``, or a clear error."""
    try:
        return collectors[provider]
    except KeyError:
        available = ", ".join(sorted(collectors)) or "none"
        raise UnsupportedProviderError(
            f"No cost collector for provider {provider!r} yet (available: {available}). "
            "Disable the account with `finops accounts disable` until support lands."
        ) from None
