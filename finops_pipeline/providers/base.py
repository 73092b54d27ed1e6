"""The seam every cloud provider fits: its spec, its collector, and the costs it returns.

A provider's package (``providers/<cloud>/``) parses its own API into :class:`ParsedCosts`, with
the columns of :data:`PARSED_COLUMNS`, and exposes a Dagster resource implementing
:class:`CostCollector`. Its :class:`ProviderSpec` names that resource and its credential kinds,
and is registered in ``providers/__init__.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from finops_pipeline.errors import UnsupportedProviderError

if TYPE_CHECKING:
    from finops_pipeline.db.accounts import CloudAccount
    from finops_pipeline.security.credentials import Credentials
    from finops_pipeline.sync.ranges import DateRange

#: The columns of every provider's parsed frame, in order; ``sync.normalise`` adds the keys.
PARSED_COLUMNS: tuple[str, ...] = (
    "date",
    "service",
    "usage_type",
    "unblended_cost",
    "amortized_cost",
    "net_unblended_cost",
    "usage_quantity",
    "currency",
    "usage_unit",
    "is_estimated",
)


@dataclass(frozen=True)
class ParsedCosts:
    """A provider's rows (columns :data:`PARSED_COLUMNS`, exact ``Decimal`` amounts) plus what
    the response said about each day."""

    frame: pd.DataFrame
    #: Every day the provider reported, with its estimated flag (days with no rows included).
    estimated_by_day: dict[dt.date, bool]


@dataclass(frozen=True)
class FetchedCosts:
    """One account's costs for one date range, as the provider returned them."""

    parsed: ParsedCosts
    paid_requests: int
    #: The provider has no data yet (a new account); the window must be left untouched.
    data_unavailable: bool = False
    pagination_restarts: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: What the provider counts instead of (or besides) paid requests, under provider-prefixed
    #: names (e.g. ``gcp_bytes_billed``); summed over the run into the asset's metadata.
    usage_metrics: Mapping[str, int] = field(default_factory=dict)
    #: The provider's version stamp of each day loaded (GCP: max(export_time)), stored with
    #: the load so the schedule can re-pull exactly the days that changed since.
    day_watermarks: Mapping[dt.date, dt.datetime] = field(default_factory=dict)
    #: Newer stamps the provider showed for any day, loaded or not (late rows of old days).
    observed_watermarks: Mapping[dt.date, dt.datetime] = field(default_factory=dict)

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
        display_name: How messages and the UI name its cost source.
        credential_classes: The credential kinds its accounts may store (see
            ``security.credentials.Credentials``).
        resource_key: The Dagster resource implementing :class:`CostCollector` for it; the
            ``cost_data`` asset requires one per registered provider.
        client_hook: Attached to every SDK client the provider builds (the sandbox).
    """

    name: str
    display_name: str
    credential_classes: tuple[type[Credentials], ...]
    resource_key: str
    client_hook: ClientHook | None = None

    @property
    def credential_kinds(self) -> tuple[str, ...]:
        """The ``credential_kind`` values its accounts may store."""
        return tuple(cls.KIND for cls in self.credential_classes)


class CostCollector(Protocol):
    """Fetches daily costs, grouped by service and usage type, for one account."""

    provider: str

    def fetch_daily_costs(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> FetchedCosts:
        """Fetch every day of ``window`` (inclusive) in as few paid requests as possible."""
        ...


class RunAwareCollector(CostCollector, Protocol):
    """A collector that plans a run's fetches before the first one (optional).

    GCP uses it to give one billing query per export and window to every project of that
    export in the run; ``collect_costs`` calls it once per run with the run's active accounts.
    """

    def prepare_run(
        self,
        connection: Any,
        account_ranges: Sequence[tuple[CloudAccount, Sequence[DateRange]]],
        decrypt: Callable[[CloudAccount], Credentials],
    ) -> None:
        """Plan the run; per-account problems are left for ``fetch_daily_costs`` to raise."""
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
