"""The seam every cloud provider's collector fits.

AWS is the first collector. Azure (Cost Management Query API) and GCP (BigQuery billing export)
plug in by implementing :class:`CostCollector` and registering under their provider name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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
