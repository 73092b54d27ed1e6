"""A local double of BigQuery's REST job API over a synthetic Cloud Billing export.

The real ``google-cloud-bigquery`` client talks to :class:`BigQuerySandbox` over HTTP through
``client_options.api_endpoint`` and a ``token_uri`` on the same server; the SQL it sends runs
for real (sqlglot to DuckDB) over tables seeded by :class:`BillingExportGenerator`.
"""

from finops_pipeline.providers.gcp.sandbox.engine import BigQueryApiError, BigQueryEngine, TableRef
from finops_pipeline.providers.gcp.sandbox.generator import (
    BillingExportGenerator,
    create_export_table,
    seed_export,
    standard_table_name,
)
from finops_pipeline.providers.gcp.sandbox.server import BigQuerySandbox

__all__ = [
    "BigQueryApiError",
    "BigQueryEngine",
    "BigQuerySandbox",
    "BillingExportGenerator",
    "TableRef",
    "create_export_table",
    "seed_export",
    "standard_table_name",
]
