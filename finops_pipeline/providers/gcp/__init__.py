"""GCP costs from the Cloud Billing export in BigQuery.

The Cloud Billing API returns no costs; they are in the customer's billing export table
(``gcp_billing_export_v1_<BILLING_ACCOUNT_ID>``, or the detailed ``..._resource_v1_...`` table,
which has the same columns plus resources). One BigQuery query per billing export and date range,
grouped by project, feeds every registered project of that export, so the bytes billed do not
grow with the number of projects.

Modules: :mod:`~finops_pipeline.providers.gcp.table` (table names, partitioning),
:mod:`~finops_pipeline.providers.gcp.query` (the SQL), :mod:`~finops_pipeline.providers.gcp.service_account`
(the masked key), :mod:`~finops_pipeline.providers.gcp.client` (the real BigQuery client and its errors),
:mod:`~finops_pipeline.providers.gcp.collector` (rows into per-project costs),
:mod:`~finops_pipeline.providers.gcp.restatement` (which days to re-pull), and
:mod:`~finops_pipeline.providers.gcp.sandbox` (a local BigQuery REST double that runs the SQL for real).
"""
