"""The seam every cloud provider fits: its spec, its collector, and the costs it returns.

A provider's package (``providers/<cloud>/``) parses its own API into :class:`ParsedCosts`, with
the columns of :data:`PARSED_COLUMNS`, and exposes a Dagster resource implementing
:class:`CostCollector`. Its :class:`ProviderSpec` names that resource, its credential kinds, how
``finops accounts add`` builds its credentials (:class:`AccountOnboarding`) and how ``finops
accounts validate`` proves them (:class:`AccountValidator`, returning a
:class:`ValidationReport`), how its SDK errors read, and its sandbox for ``finops demo``
(:class:`ProviderSandbox`). It is registered in ``providers/__init__.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from finops_pipeline.errors import FinopsError, UnsupportedProviderError

if TYPE_CHECKING:
    from finops_pipeline.db.accounts import CloudAccount
    from finops_pipeline.db.watermarks import DayWatermark
    from finops_pipeline.security.credentials import Credentials, Secret
    from finops_pipeline.sync.ranges import DateRange
    from finops_pipeline.sync.windows import ScheduledWindow, SyncPolicy

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
    """A provider's rows (columns :data:`PARSED_COLUMNS`; exact amounts, as ``Decimal``s or their
    text in an Arrow string column, see ``sync/amounts.py``) plus what
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
    #: Every request the provider answered, billed or not; None when only paid ones count.
    requests: int | None = None
    #: Quota the requests consumed, in :attr:`quota_unit` (Azure's query processing units).
    quota_consumed: Decimal = Decimal(0)
    #: The quota's name in metadata (``<quota_unit>_consumed``); None when there is none.
    quota_unit: str | None = None
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
    #: Every request made for them, billed or not, when the provider counts those (Azure).
    requests: int = 0
    #: Quota they consumed, in the fetch's ``quota_unit`` (Azure's QPU).
    quota_consumed: Decimal = Decimal(0)


#: Called with every new SDK client and its endpoint, before first use. The sandbox hooks in
#: here, where resources are bound, so the production clients never import it.
ClientHook = Callable[[Any, str | None], None]

#: Widens an account's scheduled daily window to days its source restated since they were
#: loaded: (today, policy, the window every account gets, the account's moved source
#: watermarks) -> the window to fetch. GCP's billing export is the one provider with them.
ScheduledWindowWidener = Callable[
    [dt.date, "SyncPolicy", "ScheduledWindow", Mapping[dt.date, "DayWatermark"]],
    "ScheduledWindow",
]


# --- onboarding and validation ---------------------------------------------------------------


@dataclass(frozen=True)
class OnboardedAccount:
    """A newly registered account.

    Attributes:
        account_id: Its new id.
        tenant_id: The tenant it belongs to.
        credential_kind: The ``KIND`` of the credentials stored for it.
        external_id: The tenant's external id, when the provider's credentials use one (an AWS
            role: put it in the trust policy).
    """

    account_id: str
    credential_kind: str
    external_id: str | None = None
    tenant_id: str = ""


@dataclass(frozen=True)
class Check:
    """One validation step and its outcome; ``detail`` is safe to show."""

    name: str
    ok: bool
    detail: str


@dataclass
class ValidationReport:
    """Everything validation found out about one account."""

    account_id: str
    checks: list[Check] = field(default_factory=list)
    paid_requests: int = 0
    #: Who the credentials authenticated as, when the provider says (an ARN, an e-mail, ...).
    caller_arn: str | None = None
    caller_account: str | None = None
    #: True when the credentials can be used without the tenant's proof of identity (an AWS
    #: role assumable without the external id): the account is disabled, never collected.
    unsafe_trust_policy: bool = False
    #: The paid API the probe calls, as messages name it (``Cost Explorer``).
    paid_api: str = ""
    price_per_request_usd: str = "0.00"
    #: Provider quota the probe consumed (Azure's query processing units), and the unit's name.
    quota_consumed: str | None = None
    quota_unit: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def paid_request_cost_usd(self) -> str:
        """What the probe's paid requests cost."""
        return str(Decimal(self.price_per_request_usd) * self.paid_requests)

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record a check."""
        self.checks.append(Check(name, ok, detail))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "account_id": self.account_id,
            "ok": self.ok,
            "caller_arn": self.caller_arn,
            "caller_account": self.caller_account,
            "paid_requests": self.paid_requests,
            "paid_request_cost_usd": self.paid_request_cost_usd,
            "unsafe_trust_policy": self.unsafe_trust_policy,
            **(
                {"quota_consumed": self.quota_consumed, "quota_unit": self.quota_unit}
                if self.quota_consumed is not None
                else {}
            ),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


class AccountValidator(Protocol):
    """A provider's validation probe: prove stored credentials can collect costs.

    ``endpoints`` holds the configured endpoint overrides (``FinopsConfig.endpoints()``); the
    account's own ``endpoint_url`` wins over them. ``client_hook`` is the spec's own (the
    sandbox). ``options`` carry provider-specific context for tests (AWS: ``principal``); each
    provider reads its own from the environment otherwise. A validator records failures as
    checks; the paid probe runs last, so a broken account costs nothing.
    """

    def __call__(
        self,
        account: CloudAccount,
        credentials: Credentials,
        endpoints: Mapping[str, str | None],
        *,
        client_hook: ClientHook | None = None,
        today: dt.date | None = None,
        **options: Any,
    ) -> ValidationReport: ...


class CredentialBuilder(Protocol):
    """Check onboarding input and build the credentials to store.

    ``inputs`` are the provider's own keyword arguments (AWS: ``access_key_id``,
    ``secret_access_key``, ``role_arn``). Raise ``ConfigurationError`` for bad input.
    """

    def __call__(
        self, *, provider_account_id: str, external_id: str | None, **inputs: Any
    ) -> Credentials: ...


#: Reads a secret from stdin (the flag given) or else the named environment variable; None when
#: neither holds one. The CLI passes its reader, so provider packages never touch click.
SecretReader = Callable[[str, bool], "Secret | None"]


class InputsFromOptions(Protocol):
    """Turn ``finops accounts add``'s option values into :class:`CredentialBuilder` inputs.

    Reads secrets through ``read_secret``; ``note`` prints a line to the user (stderr).
    """

    def __call__(
        self,
        options: Mapping[str, Any],
        read_secret: SecretReader,
        note: Callable[[str], None],
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AccountOnboarding:
    """How ``finops accounts add --provider <name>`` registers one of the provider's accounts.

    Attributes:
        build_credentials: Checks the input and builds the credentials.
        uses_tenant_external_id: Whether these inputs need the tenant's external id (created on
            first use and passed to ``build_credentials``).
        inputs_from_options: The CLI's option values as ``build_credentials`` inputs.
        onboarding_text: What the customer must grant (policies, roles), printed after ``add``;
            None when nothing is left to do. Called with the new account and the option values.
    """

    build_credentials: CredentialBuilder
    uses_tenant_external_id: Callable[[Mapping[str, Any]], bool]
    inputs_from_options: InputsFromOptions
    onboarding_text: Callable[[OnboardedAccount, Mapping[str, Any]], str | None]


# --- the demo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxAccount:
    """An account ``finops demo`` registers against a provider's sandbox, with its sandbox
    credentials (derived by the sandbox, so they can always be rebuilt)."""

    tenant_id: str
    name: str
    provider_account_id: str
    credentials: Credentials
    #: An AWS Organizations payer whose members the demo discovers.
    management_account: bool = False


@dataclass(frozen=True)
class ProviderSandbox:
    """A provider's in-process sandbox, as ``finops demo`` uses it.

    Attributes:
        endpoint_url: The reserved endpoint sandbox accounts are registered with; the spec's
            ``client_hook`` serves every client built for it.
        is_sandbox_endpoint: Whether a stored endpoint is the sandbox's (the demo only ever
            touches such accounts).
        demo_accounts: The demo's accounts; called only by the demo, so the sandbox's catalogue
            is imported only there.
        daily_history_start: The oldest day the provider keeps daily, for a given today.
        history_note: Says how far back that is, for the demo's ``--days`` error.
        start_pull: Begins a new pull, so later reads see restated values; returns its number.
            None when the sandbox follows another's pull (Azure's follows the AWS sandbox's).
    """

    endpoint_url: str
    is_sandbox_endpoint: Callable[[str | None], bool]
    demo_accounts: Callable[[], tuple[SandboxAccount, ...]]
    daily_history_start: Callable[[dt.date], dt.date]
    history_note: str
    start_pull: Callable[[], int] | None = None


# --- the registry entry ------------------------------------------------------------------------


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
        onboarding: How ``finops accounts add`` builds its accounts' credentials.
        validate: Its validation probe, run by ``finops accounts validate``.
        paid_api: The paid API its collection and validation call, as messages name it.
        price_per_request_usd: What one paid request costs, in USD (a decimal string).
        translate_error: Its SDK's exceptions as typed errors (None for any other exception),
            for the CLI's last guard.
        sandbox: Its sandbox, for ``finops demo``.
        widen_scheduled_window: For a source that reports restated days (watermarks), how the
            daily schedule widens an account's window to re-read them.
    """

    name: str
    display_name: str
    credential_classes: tuple[type[Credentials], ...]
    resource_key: str
    client_hook: ClientHook | None = None
    onboarding: AccountOnboarding | None = None
    validate: AccountValidator | None = None
    paid_api: str = ""
    price_per_request_usd: str = "0.00"
    translate_error: Callable[[BaseException], FinopsError | None] | None = None
    sandbox: ProviderSandbox | None = None
    widen_scheduled_window: ScheduledWindowWidener | None = None

    @property
    def credential_kinds(self) -> tuple[str, ...]:
        """The ``credential_kind`` values its accounts may store."""
        return tuple(cls.KIND for cls in self.credential_classes)

    def validation_report(self, account_id: str) -> ValidationReport:
        """An empty report priced for this provider's paid API."""
        return ValidationReport(
            account_id=account_id,
            paid_api=self.paid_api,
            price_per_request_usd=self.price_per_request_usd,
        )


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


class BudgetedCollector(CostCollector, Protocol):
    """A collector that says what a run will cost at least, for the tenant's budget.

    Optional: ``finops_pipeline.sync.budgets`` reserves ``planned_paid_requests`` in
    ``paid_request_unit`` (``request`` when absent; Azure will count ``qpu``) before any call,
    and settles to the ``paid_requests`` the fetches report.
    """

    paid_request_unit: str

    def planned_paid_requests(self, account: CloudAccount, windows: int) -> int:
        """The fewest paid units fetching ``windows`` windows of ``account`` costs."""
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
