"""Onboarding a billing export: its projects become accounts, and a free dry run checks it.

Each project to collect is a ``cloud_accounts`` row (provider ``gcp``, ``provider_account_id`` =
project id) whose encrypted credentials hold the whole service-account key and the export's
definition (see :mod:`finops_pipeline.providers.gcp.credentials`). ``finops accounts add
--provider gcp`` registers one project per call (:data:`GCP_ONBOARDING`);
:func:`register_billing_export` registers several at once. Projects of one export with the same
key share every billing query.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from finops_pipeline.constants import PROVIDER_GCP
from finops_pipeline.db.accounts import register_account
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.base import AccountOnboarding, OnboardedAccount, SecretReader
from finops_pipeline.providers.gcp.client import (
    DEFAULT_MAXIMUM_BYTES_BILLED,
    ENV_MAXIMUM_BYTES_BILLED,
    BillingExportClient,
)
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.errors import BillingExportSettingError, BytesBilledLimitError
from finops_pipeline.providers.gcp.query import build_cost_query
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.providers.gcp.table import validate_project_id
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.redaction import register_secrets
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import daily_history_start, last_complete_day

#: Where the key comes from when not piped in with --key-stdin; never a command-line argument.
ENV_SERVICE_ACCOUNT_JSON = "FINOPS_GCP_SERVICE_ACCOUNT_JSON"


def required_roles(credentials: GcpServiceAccountCredentials) -> list[str]:
    """The IAM roles the service account needs, one line each."""
    export = credentials.billing_export()
    table = export.table
    return [
        f"BigQuery Data Viewer (roles/bigquery.dataViewer) on dataset "
        f"{table.project}.{table.dataset}, for {credentials.key.client_email}",
        f"BigQuery Job User (roles/bigquery.jobUser) on project {export.billing_project}, "
        "where the queries run and are billed",
    ]


@dataclass(frozen=True)
class RegisteredProject:
    """One project of the export, as an account."""

    account_id: str
    project_id: str
    name: str


def register_billing_export(
    connection: psycopg.Connection,
    ring: KeyRing,
    *,
    tenant_id: str,
    credentials: GcpServiceAccountCredentials,
    projects: Sequence[tuple[str, str]],
) -> list[RegisteredProject]:
    """Register each ``(project id, name)`` as an account of ``tenant_id`` reading the export.

    Raises:
        BillingExportSettingError: no projects, or a malformed project id.
    """
    if not projects:
        raise BillingExportSettingError(
            "Name at least one project to collect (--project PROJECT_ID); the export holds "
            "the whole billing account."
        )
    seen: set[str] = set()
    registered = []
    for project_id, name in projects:
        validate_project_id(project_id)
        if project_id in seen:
            continue
        seen.add(project_id)
        account_id = register_account(
            connection,
            ring,
            tenant_id=tenant_id,
            name=name or project_id,
            provider=PROVIDER_GCP,
            provider_account_id=project_id,
            credentials=credentials,
            endpoint_url=credentials.api_endpoint,
        )
        registered.append(RegisteredProject(account_id, project_id, name or project_id))
    return registered


@dataclass(frozen=True)
class DryRunReport:
    """What the free dry run proved."""

    table: str
    partitioning: str
    window: DateRange
    bytes_estimate: int
    maximum_bytes_billed: int

    def lines(self) -> list[str]:
        share = self.bytes_estimate / self.maximum_bytes_billed
        return [
            f"table {self.table} exists and is readable ({self.partitioning})",
            "the service account may run query jobs (dry run accepted; dry runs are free)",
            f"a daily sync of {self.window} would process about {self.bytes_estimate:,} bytes "
            f"({share:.2%} of maximum_bytes_billed)",
        ]


def validate_billing_export(
    credentials: GcpServiceAccountCredentials,
    project_ids: Sequence[str],
    *,
    maximum_bytes_billed: int = DEFAULT_MAXIMUM_BYTES_BILLED,
    today: dt.date | None = None,
    client_hook: Callable[[Any, str | None], None] | None = None,
) -> DryRunReport:
    """Dry-run the 13-month history query: the table exists, the key may read it and run jobs,
    and the bytes estimate fits under the cap. Costs nothing.

    Raises:
        FinopsError: typed, one line (table not found, access denied, key refused...).
        BytesBilledLimitError: the history query would process more than the cap.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    window = DateRange(daily_history_start(today), last_complete_day(today))
    client = BillingExportClient.open(
        credentials.key,
        credentials.billing_export(maximum_bytes_billed),
        retry_deadline_seconds=30.0,
        client_hook=client_hook,
    )
    try:
        partitioning = client.table_partitioning()
        query = build_cost_query(
            client.export.table, window, partitioning, project_ids=list(project_ids)
        )
        estimate = client.dry_run(query)
    finally:
        client.close()
    if estimate > maximum_bytes_billed:
        raise BytesBilledLimitError(
            f"A backfill of {window} on {client.export.table} would process {estimate:,} bytes, "
            f"more than maximum_bytes_billed ({maximum_bytes_billed:,}, set by "
            f"{ENV_MAXIMUM_BYTES_BILLED}). Raise the setting or backfill shorter ranges."
        )
    return DryRunReport(
        table=client.export.table.full_name,
        partitioning=partitioning.describe(),
        window=window,
        bytes_estimate=estimate,
        maximum_bytes_billed=maximum_bytes_billed,
    )


# --- finops accounts add --provider gcp ------------------------------------------------------


def build_gcp_credentials(
    *,
    provider_account_id: str,
    external_id: str | None,
    service_account_key: ServiceAccountKey | None = None,
    billing_export_table: str | None = None,
    location: str | None = None,
    job_project: str | None = None,
    api_endpoint: str | None = None,
    token_endpoint: str | None = None,
) -> GcpServiceAccountCredentials:
    """Check the onboarding input and build the credentials of one project of an export.

    Raises:
        ConfigurationError: A missing key, table or location, or a malformed one.
    """
    validate_project_id(provider_account_id)
    if service_account_key is None:
        raise ConfigurationError(
            f"No service-account key given. Set {ENV_SERVICE_ACCOUNT_JSON} to the JSON key "
            "file's content or pipe the file to --key-stdin; it is never accepted on the "
            "command line."
        )
    if not billing_export_table or not location:
        raise ConfigurationError(
            "Name the billing export: --billing-export-table PROJECT.DATASET.TABLE and "
            "--location (the dataset's location, e.g. US or EU)."
        )
    return GcpServiceAccountCredentials(
        key=service_account_key,
        table=billing_export_table,
        location=location,
        job_project=job_project or None,
        api_endpoint=api_endpoint or None,
        token_endpoint=token_endpoint or None,
    )


def read_service_account_key(from_stdin: bool) -> ServiceAccountKey | None:
    """The JSON key from stdin (the whole file) or ``FINOPS_GCP_SERVICE_ACCOUNT_JSON``; its
    secret parts join the log redaction at once."""
    text = sys.stdin.read() if from_stdin else os.environ.get(ENV_SERVICE_ACCOUNT_JSON, "")
    if not text.strip():
        if from_stdin:
            raise ConfigurationError("--key-stdin was given but stdin held no key file.")
        return None
    key = ServiceAccountKey.from_json(text)
    register_secrets(*key.secret_values())
    return key


def inputs_from_options(
    options: Mapping[str, Any], read_secret: SecretReader, note: Callable[[str], None]
) -> dict[str, Any]:
    """``accounts add``'s GCP options as :func:`build_gcp_credentials` inputs.

    The key file is multi-line JSON, so it is read whole (not through ``read_secret``, which
    reads one line); ``--secret-stdin`` means ``--key-stdin`` here.
    """
    from_stdin = bool(options.get("key_stdin") or options.get("secret_stdin"))
    return {
        "service_account_key": read_service_account_key(from_stdin),
        "billing_export_table": options.get("billing_export_table"),
        "location": options.get("location"),
        "job_project": options.get("job_project"),
        "api_endpoint": options.get("api_endpoint"),
        "token_endpoint": options.get("token_endpoint"),
    }


def onboarding_text(added: OnboardedAccount, options: Mapping[str, Any]) -> str | None:
    """The roles the service account needs, and how the export's other projects join it."""
    table = options.get("billing_export_table") or "PROJECT.DATASET.TABLE"
    dataset = ".".join(str(table).split(".")[:2])
    job_project = options.get("job_project") or str(table).split(".")[0]
    return "\n".join(
        [
            "\nthe service account needs:",
            f"  BigQuery Data Viewer (roles/bigquery.dataViewer) on dataset {dataset}",
            f"  BigQuery Job User (roles/bigquery.jobUser) on project {job_project}",
            "\nAdd the export's other projects the same way (same key, table and location): "
            "they share one billing query per sync, so the bytes billed do not grow with them.",
            f"Check it for free with: finops accounts validate {added.account_id}",
        ]
    )


GCP_ONBOARDING = AccountOnboarding(
    build_credentials=build_gcp_credentials,
    uses_tenant_external_id=lambda inputs: False,
    inputs_from_options=inputs_from_options,
    onboarding_text=onboarding_text,
)
