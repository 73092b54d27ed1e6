"""Every BigQuery and google-auth failure leaves as a typed, one-line error."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.gcp.client import (
    ENV_MAXIMUM_BYTES_BILLED,
    BillingExport,
    maximum_bytes_billed_from_env,
)
from finops_pipeline.providers.gcp.collector import collect_billing_export
from finops_pipeline.providers.gcp.errors import (
    BillingExportSettingError,
    BillingTableNotFoundError,
    BytesBilledLimitError,
    GcpAccessDeniedError,
    GcpTransientError,
    ServiceAccountKeyError,
)
from finops_pipeline.providers.gcp.sandbox import BigQuerySandbox, TableRef
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.providers.gcp.table import BillingExportTable
from finops_pipeline.sync.ranges import DateRange
from tests.providers.gcp.conftest import BILLING_PROJECT, DATASET, PROJECT_A, export_row, utc

WINDOW = DateRange(dt.date(2025, 1, 10), dt.date(2025, 1, 10))
AS_OF = dt.date(2025, 3, 1)


def _collect(client) -> object:
    return collect_billing_export(client, project_ids=[PROJECT_A], window=WINDOW, as_of=AS_OF)


def _assert_one_line(error: FinopsError) -> None:
    assert "\n" not in str(error)
    assert error.__suppress_context__ or error.__cause__ is None


def test_the_bytes_cap_gives_a_typed_permanent_error_naming_the_setting(
    bigquery_sandbox: BigQuerySandbox, make_export, open_client
) -> None:
    export = make_export(
        [export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)], maximum_bytes_billed=1024 * 1024
    )
    client = open_client(export, retry_deadline=5)
    client.table_partitioning()
    jobs_before = len(bigquery_sandbox.query_jobs())
    with pytest.raises(BytesBilledLimitError) as caught:
        _collect(client)
    error = caught.value
    assert error.permanent
    assert "maximum_bytes_billed" in str(error) and ENV_MAXIMUM_BYTES_BILLED in str(error)
    assert "1,048,576" in str(error)
    _assert_one_line(error)
    # BigQuery reports the failed job as a 500; it is not retried as a server error.
    jobs = bigquery_sandbox.query_jobs()[jobs_before:]
    assert len(jobs) == 1
    assert jobs[0].error is not None and jobs[0].error.reason == "bytesBilledLimitExceeded"


def test_a_missing_table_is_a_permanent_not_found_error(
    bigquery_sandbox: BigQuerySandbox, reader_key: ServiceAccountKey, open_client
) -> None:
    ref = TableRef(BILLING_PROJECT, DATASET, "gcp_billing_export_v1_NEVER_CREATED")
    bigquery_sandbox.grant(reader_key.client_email, readable_tables=[ref])
    export = BillingExport(
        BillingExportTable.parse(f"{BILLING_PROJECT}.{DATASET}.{ref.table}"),
        "US",
        api_endpoint=bigquery_sandbox.endpoint,
        token_uri=bigquery_sandbox.token_uri,
    )
    with pytest.raises(BillingTableNotFoundError) as caught:
        _collect(open_client(export))
    assert caught.value.permanent
    assert ref.table in str(caught.value)
    _assert_one_line(caught.value)


def test_missing_permissions_are_permanent_access_denied_errors_naming_the_roles(
    bigquery_sandbox: BigQuerySandbox, make_export, open_client
) -> None:
    unreadable = make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)], readable=False)
    with pytest.raises(GcpAccessDeniedError) as caught:
        _collect(open_client(unreadable))
    assert caught.value.permanent
    assert "BigQuery Data Viewer" in str(caught.value)
    _assert_one_line(caught.value)

    # Readable table, but no right to run jobs in the billing project.
    outsider_info = bigquery_sandbox.create_service_account(
        "no-jobs@billing-host-01.iam.gserviceaccount.com", project_id=BILLING_PROJECT
    )
    outsider = ServiceAccountKey.from_json(json.dumps(outsider_info))
    readable = make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)])
    bigquery_sandbox.grant(
        outsider.client_email,
        readable_tables=[TableRef(BILLING_PROJECT, DATASET, readable.table.table)],
    )
    with pytest.raises(GcpAccessDeniedError) as caught:
        _collect(open_client(readable, outsider))
    assert "BigQuery Job User" in str(caught.value)


def test_a_refused_key_is_a_permanent_key_error(
    bigquery_sandbox: BigQuerySandbox, reader_key_info, make_export, open_client
) -> None:
    # Same account, but a private key Google does not know (deleted or rotated).
    other = bigquery_sandbox.create_service_account(
        "someone-else@billing-host-01.iam.gserviceaccount.com", project_id=BILLING_PROJECT
    )
    forged = dict(reader_key_info, private_key=other["private_key"])
    export = make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)])
    with pytest.raises(ServiceAccountKeyError) as caught:
        _collect(open_client(export, ServiceAccountKey.from_json(json.dumps(forged))))
    assert caught.value.permanent
    assert "invalid_grant" in str(caught.value)
    _assert_one_line(caught.value)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "authorized_user", "client_email": "a", "private_key": "b"}', "'type'"),
        ('{"type": "service_account"}', "client_email, private_key"),
        (
            '{"type": "service_account", "client_email": "a@b", "private_key": "MIIE..."}',
            "PEM",
        ),
    ],
)
def test_malformed_keys_are_refused_by_field_name(text: str, detail: str) -> None:
    with pytest.raises(ServiceAccountKeyError, match="not usable") as caught:
        ServiceAccountKey.from_json(text)
    assert detail in str(caught.value)


def test_an_unreadable_private_key_is_refused_before_any_request(
    reader_key_info, make_export, open_client
) -> None:
    broken = dict(
        reader_key_info,
        private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    export = make_export()
    with pytest.raises(ServiceAccountKeyError, match="could not be loaded"):
        open_client(export, ServiceAccountKey.from_json(json.dumps(broken)))


def test_server_errors_are_retried_then_reported_as_transient(
    bigquery_sandbox: BigQuerySandbox, make_export, open_client
) -> None:
    export = make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)])
    client = open_client(export, retry_deadline=1.5)
    client.table_partitioning()
    bigquery_sandbox.fail_next(1, status=503, reason="backendError", path_contains="/jobs")
    assert len(_collect(client).for_project(PROJECT_A).frame) == 1  # retried once, then fine

    bigquery_sandbox.fail_next(1000, status=503, reason="backendError", path_contains="/bigquery/")
    try:
        with pytest.raises(GcpTransientError) as caught:
            _collect(client)
    finally:
        bigquery_sandbox.clear_faults()
    assert not caught.value.permanent
    _assert_one_line(caught.value)


def test_an_unreachable_endpoint_is_transient(reader_key: ServiceAccountKey, open_client) -> None:
    export = BillingExport(
        BillingExportTable.parse(f"{BILLING_PROJECT}.{DATASET}.gcp_billing_export_v1_X"),
        "US",
        api_endpoint="http://127.0.0.1:9",
        token_uri="http://127.0.0.1:9/token",
    )
    with pytest.raises(GcpTransientError) as caught:
        _collect(open_client(export, retry_deadline=0.5))
    assert not caught.value.permanent


def test_plain_http_endpoints_are_refused_except_on_localhost() -> None:
    table = BillingExportTable.parse(f"{BILLING_PROJECT}.{DATASET}.gcp_billing_export_v1_X")
    for url in ("http://bigquery.internal.example.com", "ftp://x", "https://u:p@host", "nope"):
        with pytest.raises(BillingExportSettingError):
            BillingExport(table, "US", api_endpoint=url)
    with pytest.raises(BillingExportSettingError):
        BillingExport(table, "US", token_uri="http://oauth.example.com/token")
    assert BillingExport(table, "EU", api_endpoint="https://bq.p.example.com/").api_endpoint == (
        "https://bq.p.example.com"
    )


def test_the_bytes_cap_setting_is_read_and_checked() -> None:
    assert maximum_bytes_billed_from_env({}) == 100 * 1024**3
    assert maximum_bytes_billed_from_env({ENV_MAXIMUM_BYTES_BILLED: "5_000_000"}) == 5_000_000
    for bad in ("lots", "-1", "0"):
        with pytest.raises(BillingExportSettingError, match=ENV_MAXIMUM_BYTES_BILLED):
            maximum_bytes_billed_from_env({ENV_MAXIMUM_BYTES_BILLED: bad})
