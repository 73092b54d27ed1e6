"""The demo's GCP tenant: one sandbox billing export with three projects.

The export is served by the process's BigQuery double (:mod:`.hook`) through the reserved
``.invalid`` API and token endpoints; the service-account key is a real RSA key made for the
sandbox and stored encrypted like any other.
"""

from __future__ import annotations

import json

from finops_pipeline.providers.base import SandboxAccount
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.sandbox.hook import (
    DEMO_EXPORT,
    DEMO_SERVICE_ACCOUNT,
    SANDBOX_API_ENDPOINT,
    SANDBOX_TOKEN_ENDPOINT,
    process_sandbox,
)
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey

DEMO_GCP_TENANT = "umbrella"


def demo_credentials() -> GcpServiceAccountCredentials:
    """A new key for the demo's service account, reading the demo export via the sandbox."""
    info = process_sandbox().create_service_account(
        DEMO_SERVICE_ACCOUNT,
        project_id=DEMO_EXPORT.billing_project,
        job_projects=[DEMO_EXPORT.billing_project],
        readable_tables=[DEMO_EXPORT.table_ref],
    )
    return GcpServiceAccountCredentials(
        key=ServiceAccountKey.from_json(json.dumps(info)),
        table=DEMO_EXPORT.table_name,
        location=DEMO_EXPORT.location,
        api_endpoint=SANDBOX_API_ENDPOINT,
        token_endpoint=SANDBOX_TOKEN_ENDPOINT,
    )


_credentials: GcpServiceAccountCredentials | None = None


def demo_accounts() -> tuple[SandboxAccount, ...]:
    """The demo export's projects, one account each, sharing one key (made once per process,
    so they share every billing query)."""
    global _credentials
    if _credentials is None:
        _credentials = demo_credentials()
    return tuple(
        SandboxAccount(DEMO_GCP_TENANT, name, project_id, _credentials)
        for project_id, name in DEMO_EXPORT.projects
    )
