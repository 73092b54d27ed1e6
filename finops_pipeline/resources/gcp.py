"""The GCP billing-export resource: the GCP implementation of the collector seam.

Each GCP project is a ``cloud_accounts`` row whose credentials name the billing export it is
billed to. BigQuery bills the bytes a query scans, and a filter on ``project.id`` scans the
same partitions and columns as none, so the resource runs **one cost query per billing export
and date range per run** for every project of that export in the run
(:meth:`GcpBillingExportResource.prepare_run` groups them), caches the result, and hands each
project its own rows. Bytes processed and billed are reported once, on the first project of
the export, so the run's totals are what BigQuery bills.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field, PrivateAttr

from finops_pipeline.constants import PROVIDER_GCP
from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.db.watermarks import newest_observed
from finops_pipeline.errors import CredentialError, FinopsError
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.base import FetchedCosts, ProviderTotals
from finops_pipeline.providers.gcp.client import (
    DEFAULT_MAXIMUM_BYTES_BILLED,
    DEFAULT_RETRY_DEADLINE_SECONDS,
    BillingExportClient,
)
from finops_pipeline.providers.gcp.collector import (
    BillingExportCosts,
    collect_billing_export,
    read_project_locations,
    read_project_watermarks,
)
from finops_pipeline.providers.gcp.credentials import ExportKey, GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.recommendations import (
    LOCATION_LOOKBACK_DAYS,
    RecommenderLocations,
    locations_from_env,
)
from finops_pipeline.providers.gcp.recommender import (
    RecommenderReader,
    build_recommender_client,
    recommender_endpoint_for,
)
from finops_pipeline.providers.gcp.table import TablePartitioning, validate_project_id
from finops_pipeline.providers.recommenders import FetchedRecommendations
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import daily_history_start

logger = logging.getLogger(__name__)

#: Metadata names of the bytes BigQuery processed and billed for the run's queries.
BYTES_PROCESSED_METRIC = "gcp_bytes_processed"
BYTES_BILLED_METRIC = "gcp_bytes_billed"
QUERIES_METRIC = "gcp_queries"
#: The export-time check looks back this far before the newest stamp seen: the export may
#: commit rows a little out of export_time order; seeing a row twice changes nothing.
OBSERVATION_OVERLAP = dt.timedelta(hours=6)


#: One tenant's reading of one export with one key.
RunKey = tuple[str, ExportKey]


class GcpBillingExportResource(dg.ConfigurableResource):
    """Fetches daily costs per GCP project from the Cloud Billing export in BigQuery.

    Clients are built from each export's service-account key only, never from ambient
    credentials. Every query sets ``maximum_bytes_billed``; a query above it fails unbilled
    with a typed, permanent error naming ``FINOPS_GCP_MAXIMUM_BYTES_BILLED``.
    """

    provider: str = PROVIDER_GCP
    maximum_bytes_billed: int = Field(
        default=DEFAULT_MAXIMUM_BYTES_BILLED,
        ge=1,
        description="Bytes one billing query may bill (FINOPS_GCP_MAXIMUM_BYTES_BILLED).",
    )
    retry_deadline_seconds: float = Field(default=DEFAULT_RETRY_DEADLINE_SECONDS, gt=0)
    as_of_date: str | None = Field(
        default=None,
        description="The day (YYYY-MM-DD, UTC) invoice months are judged open on; today if "
        "unset. For tests and replays.",
    )
    recommender_locations: list[str] = Field(
        default_factory=list,
        description="Zones and regions whose Recommender cost recommendations are read for "
        "every project (FINOPS_GCP_RECOMMENDER_LOCATIONS); their regions and global are "
        "added. Empty (the default, or 'auto'): each project's own, from its billing export.",
    )

    # Per run: which projects of each export read each window, and what was read already.
    _planned: dict[tuple[RunKey, DateRange], set[str]] = PrivateAttr(default_factory=dict)
    _export_accounts: dict[RunKey, set[str]] = PrivateAttr(default_factory=dict)
    _observe_since: dict[RunKey, dt.datetime] = PrivateAttr(default_factory=dict)
    _results: dict[tuple[RunKey, DateRange], BillingExportCosts] = PrivateAttr(default_factory=dict)
    _observed: dict[RunKey, dict[str, dict[dt.date, dt.datetime]]] = PrivateAttr(
        default_factory=dict
    )
    _clients: dict[RunKey, BillingExportClient] = PrivateAttr(default_factory=dict)
    _partitioning: dict[RunKey, TablePartitioning] = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.reset()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the run's plan, results and clients (closing them)."""
        for client in self._clients.values():
            client.close()
        self._planned = {}
        self._export_accounts = {}
        self._observe_since = {}
        self._results = {}
        self._observed = {}
        self._clients = {}
        self._partitioning = {}

    @property
    def today(self) -> dt.date:
        if self.as_of_date:
            return dt.date.fromisoformat(self.as_of_date)
        return dt.datetime.now(dt.UTC).date()

    def prepare_run(
        self,
        connection: psycopg.Connection,
        account_ranges: Sequence[tuple[CloudAccount, Sequence[DateRange]]],
        decrypt: Callable[[CloudAccount], Credentials],
    ) -> None:
        """Group the run's projects by export and window, so each pair is one query."""
        self.reset()
        for account, ranges in account_ranges:
            try:
                credentials = decrypt(account)
            except FinopsError:
                continue  # the account fails on its own when it is fetched
            if not isinstance(credentials, GcpServiceAccountCredentials):
                continue
            key = self._export_key(account, credentials)
            self._export_accounts.setdefault(key, set()).add(account.id)
            for window in ranges:
                self._planned.setdefault((key, window), set()).add(account.provider_account_id)
        stamps = newest_observed(connection, [a.id for a, _ in account_ranges])
        for key, account_ids in self._export_accounts.items():
            known = [stamps[account_id] for account_id in account_ids if account_id in stamps]
            if known:
                # Rows exported after the oldest of these were not seen by every project.
                self._observe_since[key] = min(known) - OBSERVATION_OVERLAP

    @staticmethod
    def _export_key(account: CloudAccount, credentials: GcpServiceAccountCredentials) -> RunKey:
        # Only one tenant's projects ever share a client or a result: each tenant's run uses
        # the credentials that tenant stored.
        return (account.tenant_id, credentials.export_key)

    def _client(
        self, key: RunKey, credentials: GcpServiceAccountCredentials
    ) -> BillingExportClient:
        if key not in self._clients:
            self._clients[key] = BillingExportClient.open(
                credentials.key,
                credentials.billing_export(self.maximum_bytes_billed),
                retry_deadline_seconds=self.retry_deadline_seconds,
                # Sandbox exports are answered in-process: the registry's hook, bound here.
                client_hook=provider_spec(self.provider).client_hook,
            )
        return self._clients[key]

    def _table_partitioning(self, key: RunKey, client: BillingExportClient) -> TablePartitioning:
        if key not in self._partitioning:
            self._partitioning[key] = client.table_partitioning()
        return self._partitioning[key]

    def _observe(
        self, key: RunKey, client: BillingExportClient, projects: Sequence[str]
    ) -> tuple[dict[str, dict[dt.date, dt.datetime]], dict[str, int]]:
        """Once per export and run: the newest stamps of days with rows exported since the
        last check (late rows of days outside the run's windows). Best effort: when it fails,
        the next run checks from the same point again."""
        if key in self._observed or key not in self._observe_since:
            return self._observed.get(key, {}), {}
        try:
            marks, outcome = read_project_watermarks(
                client,
                project_ids=projects,
                exported_since=self._observe_since[key],
                usage_start=daily_history_start(self.today),
                partitioning=self._table_partitioning(key, client),
            )
        except FinopsError as error:
            logger.warning(
                "The export-time check of %s failed (%s); it runs again next time.",
                client.export.table,
                type(error).__name__,
            )
            self._observed[key] = {}
            return {}, {}
        self._observed[key] = marks
        return marks, {
            BYTES_PROCESSED_METRIC: outcome.bytes_processed,
            BYTES_BILLED_METRIC: outcome.bytes_billed,
            QUERIES_METRIC: 1,
        }

    def fetch_daily_costs(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> FetchedCosts:
        """The project's costs from its export's one query for ``window`` in this run."""
        if not isinstance(credentials, GcpServiceAccountCredentials):
            raise CredentialError(
                f"Account {account.id} is a GCP project but its credentials are "
                f"{credentials.kind!r}; re-add it with `finops accounts add --provider gcp`."
            )
        project = validate_project_id(account.provider_account_id)
        key = self._export_key(account, credentials)
        client = self._client(key, credentials)
        metrics: dict[str, int] = {
            BYTES_PROCESSED_METRIC: 0,
            BYTES_BILLED_METRIC: 0,
            QUERIES_METRIC: 0,
        }
        notes: tuple[str, ...] = ()
        cached = self._results.get((key, window))
        if cached is None or project not in cached.by_project:
            projects = sorted(self._planned.get((key, window), set()) | {project})
            cached = collect_billing_export(
                client,
                project_ids=projects,
                window=window,
                as_of=self.today,
                partitioning=self._table_partitioning(key, client),
            )
            self._results[(key, window)] = cached
            metrics = {
                BYTES_PROCESSED_METRIC: cached.bytes_processed,
                BYTES_BILLED_METRIC: cached.bytes_billed,
                QUERIES_METRIC: 1,
            }
            notes = cached.notes
            logger.info(
                "Billing query on %s for %s: %d projects, %d bytes processed, %d billed",
                client.export.table,
                window,
                len(projects),
                cached.bytes_processed,
                cached.bytes_billed,
            )
        export_projects = sorted(
            {p for (k, _), planned in self._planned.items() if k == key for p in planned}
            | {project}
        )
        observed, check_metrics = self._observe(key, client, export_projects)
        for name, value in check_metrics.items():
            metrics[name] = metrics.get(name, 0) + value
        return FetchedCosts(
            parsed=cached.for_project(project),
            # BigQuery bills bytes, not requests; they are in usage_metrics.
            paid_requests=0,
            notes=notes,
            usage_metrics=metrics,
            day_watermarks=cached.project_watermarks.get(project, {}),
            observed_watermarks=observed.get(project, {}),
        )

    def provider_totals(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> ProviderTotals | None:
        """The export's own cost total per day and currency, from the fetch's own query.

        The cost query also sums each project's day and currency as exported (FLOAT64, rounded
        once), apart from the grouped rows; no second query, no extra bytes, no paid request.
        Returns None when the window was not fetched in this run.
        """
        if not isinstance(credentials, GcpServiceAccountCredentials):
            return None
        project = validate_project_id(account.provider_account_id)
        cached = self._results.get((self._export_key(account, credentials), window))
        if cached is None or project not in cached.by_project:
            return None
        estimated = cached.by_project[project].estimated_by_day
        return ProviderTotals(
            by_day=dict(cached.totals_for_project(project)),
            paid_requests=0,
            estimated_days=frozenset(day for day, flag in estimated.items() if flag),
        )

    def fetch_recommendations(
        self, account: CloudAccount, credentials: Credentials
    ) -> FetchedRecommendations:
        """The project's open cost recommendations from GCP Recommender (free requests,
        counted in ``gcp_requests``), asked where its billing export shows usage lately (one
        small query, in ``gcp_bytes_billed``) unless fixed locations are configured."""
        if not isinstance(credentials, GcpServiceAccountCredentials):
            raise CredentialError(
                f"Account {account.id} is a GCP project but its credentials are "
                f"{credentials.kind!r}; re-add it with `finops accounts add --provider gcp`."
            )
        project = validate_project_id(account.provider_account_id)
        if self.recommender_locations:
            locations, usage_metrics = RecommenderLocations.parse(self.recommender_locations), {}
        else:
            locations, usage_metrics = self._discover_locations(account, credentials, project)
        client = build_recommender_client(
            credentials.key,
            api_endpoint=recommender_endpoint_for(credentials.api_endpoint),
            token_uri=credentials.token_endpoint,
            # Sandbox projects are answered in-process: the registry's hook, bound here.
            client_hook=provider_spec(self.provider).client_hook,
        )
        reader = RecommenderReader(
            client,
            client_email=credentials.key.client_email,
            retry_deadline_seconds=self.retry_deadline_seconds,
        )
        try:
            fetched = reader.fetch(project, locations)
        finally:
            reader.close()
        fetched.usage_metrics = usage_metrics
        fetched.asked_where = locations.describe()
        if not locations.zones and not locations.regions:
            fetched.notes.append(
                f"project {project} shows no zonal or regional usage in its billing export's "
                f"last {LOCATION_LOOKBACK_DAYS} days, so only the global recommenders were "
                "asked; set FINOPS_GCP_RECOMMENDER_LOCATIONS to ask fixed locations instead."
            )
        return fetched

    def _discover_locations(
        self, account: CloudAccount, credentials: GcpServiceAccountCredentials, project: str
    ) -> tuple[RecommenderLocations, dict[str, int]]:
        """Where the project ran lately, from its billing export: one small query."""
        key = self._export_key(account, credentials)
        client = self._client(key, credentials)
        locations, outcome = read_project_locations(
            client,
            project_id=project,
            as_of=self.today,
            partitioning=self._table_partitioning(key, client),
        )
        logger.info(
            "Recommender locations of %s from %s: %s (%d bytes billed)",
            project,
            client.export.table,
            locations.describe(),
            outcome.bytes_billed,
        )
        return locations, {
            BYTES_PROCESSED_METRIC: outcome.bytes_processed,
            BYTES_BILLED_METRIC: outcome.bytes_billed,
            QUERIES_METRIC: 1,
        }

    def planned_recommendation_requests(self, account: CloudAccount) -> int:
        """Recommender requests are free: a refresh reserves none of the tenant's budget."""
        return 0

    def __repr__(self) -> str:
        return f"GcpBillingExportResource(maximum_bytes_billed={self.maximum_bytes_billed})"


def gcp_resource_kwargs(environ: Any) -> dict[str, Any]:
    """The resource's settings from the environment (``FINOPS_GCP_MAXIMUM_BYTES_BILLED``,
    ``FINOPS_GCP_RECOMMENDER_LOCATIONS``)."""
    from finops_pipeline.providers.gcp.client import maximum_bytes_billed_from_env

    return {
        "maximum_bytes_billed": maximum_bytes_billed_from_env(environ),
        "recommender_locations": list(locations_from_env(environ)),
    }
