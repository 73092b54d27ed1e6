"""The demo's GCP tenant: one sandbox billing export with three projects.

The export is served by the process's BigQuery double (:mod:`.hook`) through the reserved
``.invalid`` API and token endpoints; the service-account key is a real RSA key made for the
sandbox and stored encrypted like any other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg

from finops_pipeline.constants import PROVIDER_GCP
from finops_pipeline.db.accounts import (
    find_account_id,
    get_account,
    register_account,
    replace_credentials,
)
from finops_pipeline.errors import ConfigurationError, CredentialError
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.sandbox.hook import (
    DEMO_EXPORT,
    DEMO_SERVICE_ACCOUNT,
    SANDBOX_API_ENDPOINT,
    SANDBOX_TOKEN_ENDPOINT,
    is_sandbox_endpoint,
    process_sandbox,
)
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.security.ciphertext import KeyRing, encrypt
from finops_pipeline.security.credentials import open_credentials, serialize_credentials

DEMO_GCP_TENANT = "umbrella"


@dataclass(frozen=True)
class DemoProject:
    """A demo project's account."""

    account_id: str
    tenant_id: str
    name: str
    project_id: str
    created: bool


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


def ensure_demo_projects(connection: psycopg.Connection, ring: KeyRing) -> list[DemoProject]:
    """Register the demo export's projects once; later runs find the same rows.

    Raises:
        ConfigurationError: a project id of the demo is already registered with a real export.
    """
    credentials: GcpServiceAccountCredentials | None = None
    projects = []
    for project_id, name in DEMO_EXPORT.projects:
        account_id = find_account_id(
            connection,
            tenant_id=DEMO_GCP_TENANT,
            provider=PROVIDER_GCP,
            provider_account_id=project_id,
        )
        if account_id is None:
            credentials = credentials or demo_credentials()
            account_id = register_account(
                connection,
                ring,
                tenant_id=DEMO_GCP_TENANT,
                name=name,
                provider=PROVIDER_GCP,
                provider_account_id=project_id,
                credentials=credentials,
                endpoint_url=SANDBOX_API_ENDPOINT,
            )
            projects.append(DemoProject(account_id, DEMO_GCP_TENANT, name, project_id, True))
            continue
        account = get_account(connection, account_id)
        if not is_sandbox_endpoint(account.endpoint_url):
            raise ConfigurationError(
                f"Tenant {DEMO_GCP_TENANT} already has GCP project {project_id} on a real "
                "billing export; the demo only touches sandbox exports. Use another database "
                "(FINOPS_HOME or DATABASE_URL) for the demo."
            )
        try:
            open_credentials(account, ring)
        except CredentialError:
            # The local key was replaced: a sandbox key is made again, like the sandbox rows.
            credentials = credentials or demo_credentials()
            blob = encrypt(serialize_credentials(credentials), ring, account.encryption_context)
            replace_credentials(connection, account.id, blob)
        projects.append(DemoProject(account.id, DEMO_GCP_TENANT, account.name, project_id, False))
    return projects
