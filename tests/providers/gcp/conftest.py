"""GCP fixtures: one local BigQuery REST double per session, a fresh export table per test."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pytest

from finops_pipeline.providers.gcp.client import BillingExport, BillingExportClient
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.sandbox import (
    BigQuerySandbox,
    TableRef,
    create_export_table,
    seed_export,
)
from finops_pipeline.providers.gcp.sandbox.engine import PARTITIONTIME
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.providers.gcp.table import BillingExportTable

BILLING_PROJECT = "billing-host-01"
DATASET = "cloud_billing"
READER_EMAIL = "finops-reader@billing-host-01.iam.gserviceaccount.com"
PROJECT_A = "shop-prod-1234"
PROJECT_B = "shop-staging-77"
PROJECT_C = "data-lake-9001"

_table_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def bigquery_sandbox() -> Iterator[BigQuerySandbox]:
    """The BigQuery REST double on 127.0.0.1, for the real google-cloud-bigquery client."""
    with BigQuerySandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def reader_key_info(bigquery_sandbox: BigQuerySandbox) -> dict[str, Any]:
    """A service-account JSON key (as a dict) that may run jobs in the billing project."""
    return bigquery_sandbox.create_service_account(
        READER_EMAIL, project_id=BILLING_PROJECT, job_projects=[BILLING_PROJECT]
    )


@pytest.fixture(scope="session")
def reader_key(reader_key_info: dict[str, Any]) -> ServiceAccountKey:
    return ServiceAccountKey.from_json(json.dumps(reader_key_info))


def export_row(
    project_id: str,
    usage_start: dt.datetime,
    cost: float,
    *,
    credits: Sequence[tuple[str, float]] = (),
    exported: dt.datetime | None = None,
    service: str = "Compute Engine",
    sku: str = "N2 Instance Core running in Americas",
    unit: str = "seconds",
    usage_amount: float = 3600.0,
    invoice_month: str | None = None,
    currency: str = "USD",
) -> dict[str, Any]:
    """One billing export row; it lands in the partition of its export time."""
    exported = exported or usage_start + dt.timedelta(hours=4)
    return {
        "billing_account_id": "01A2B3-C4D5E6-F7A8B9",
        "service": {"id": "6F81-5844-456A", "description": service},
        "sku": {"id": "1234-ABCD-5678", "description": sku},
        "usage_start_time": usage_start,
        "usage_end_time": usage_start + dt.timedelta(hours=1),
        "project": {"id": project_id, "number": "123456789012", "name": project_id},
        "labels": [],
        "location": {"location": "us-central1", "country": "US", "region": "us-central1"},
        "export_time": exported,
        "cost": cost,
        "currency": currency,
        "currency_conversion_rate": 1.0,
        "usage": {
            "amount": usage_amount,
            "unit": unit,
            "amount_in_pricing_units": usage_amount / 3600.0,
            "pricing_unit": "hour",
        },
        "credits": [
            {"name": name, "amount": amount, "full_name": name, "id": name, "type": "PROMOTION"}
            for name, amount in credits
        ],
        "invoice": {"month": invoice_month or f"{usage_start:%Y%m}"},
        "cost_type": "regular",
        PARTITIONTIME: exported,
    }


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


ExportFactory = Callable[..., BillingExport]


@pytest.fixture
def make_export(bigquery_sandbox: BigQuerySandbox, reader_key: ServiceAccountKey) -> ExportFactory:
    """Create a fresh export table holding ``rows``, readable by the reader key."""

    def make(
        rows: Iterable[dict[str, Any]] = (),
        *,
        partitioning: str = "ingestion_time",
        maximum_bytes_billed: int = 10 * 1024**3,
        readable: bool = True,
        table_name: str | None = None,
    ) -> BillingExport:
        name = table_name or f"gcp_billing_export_v1_T{next(_table_numbers):04d}"
        ref = TableRef(BILLING_PROJECT, DATASET, name)
        create_export_table(bigquery_sandbox.engine, ref, partitioning=partitioning)
        seed_export(bigquery_sandbox.engine, ref, list(rows))
        if readable:
            bigquery_sandbox.grant(reader_key.client_email, readable_tables=[ref])
        return BillingExport(
            table=BillingExportTable.parse(f"{BILLING_PROJECT}.{DATASET}.{name}"),
            location="US",
            api_endpoint=bigquery_sandbox.endpoint,
            token_uri=bigquery_sandbox.token_uri,
            maximum_bytes_billed=maximum_bytes_billed,
        )

    return make


@pytest.fixture
def open_client(reader_key: ServiceAccountKey) -> Iterator[Callable[..., BillingExportClient]]:
    """Open BillingExportClients with a short retry deadline; closes them afterwards."""
    opened: list[BillingExportClient] = []

    def open_(
        export: BillingExport, key: ServiceAccountKey | None = None, *, retry_deadline: float = 2.0
    ) -> BillingExportClient:
        client = BillingExportClient.open(
            key or reader_key, export, retry_deadline_seconds=retry_deadline
        )
        opened.append(client)
        return client

    yield open_
    for client in opened:
        client.close()


def credentials_for(
    export: BillingExport, key_info: dict[str, Any]
) -> GcpServiceAccountCredentials:
    """The stored credential kind for ``export``, read with the key ``key_info``."""
    return GcpServiceAccountCredentials(
        key=ServiceAccountKey.from_json(json.dumps(key_info)),
        table=export.table.full_name,
        location=export.location,
        api_endpoint=export.api_endpoint,
        token_endpoint=export.token_uri,
    )
