"""Serving the sandbox to the real BigQuery client of a sandbox billing export.

The GCP registry hook (``finops_pipeline.providers.gcp.spec``), bound where the resources are,
calls :func:`attach_sandbox` for clients whose API endpoint is the reserved ``.invalid`` host;
the production client never imports this module. The real ``google-cloud-bigquery`` client and
google-auth still build, sign and send every request; a ``requests`` adapter mounted on the
client's sessions forwards what is addressed to the reserved host to a :class:`BigQuerySandbox`
started on 127.0.0.1 in this process, so it works in any process (``finops demo``, a Dagster run
worker). The ``.invalid`` host never resolves, so a sandbox export can never reach Google.

The process's sandbox holds the demo billing export (:data:`DEMO_EXPORT`), generated
deterministically up to now: each process computes the same rows, and a later pull sees the
rows exported since, as the real export does.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
from cryptography.hazmat.primitives import serialization

from finops_pipeline.providers.gcp.sandbox.engine import TableRef
from finops_pipeline.providers.gcp.sandbox.generator import (
    BillingExportGenerator,
    create_export_table,
    seed_export,
    standard_table_name,
)
from finops_pipeline.providers.gcp.sandbox.server import BigQuerySandbox
from finops_pipeline.sync.windows import first_of_month

SANDBOX_HOST = "bigquery.sandbox.finops.invalid"
SANDBOX_API_ENDPOINT = f"https://{SANDBOX_HOST}"
SANDBOX_TOKEN_ENDPOINT = f"{SANDBOX_API_ENDPOINT}/token"
#: GCP Recommender's reserved host for sandbox projects, answered by the same local server.
RECOMMENDER_SANDBOX_HOST = "recommender.sandbox.finops.invalid"
RECOMMENDER_SANDBOX_ENDPOINT = f"https://{RECOMMENDER_SANDBOX_HOST}"
#: Months of history the process's sandbox holds before the current one.
SANDBOX_HISTORY_MONTHS = 13


@dataclass(frozen=True)
class SandboxExport:
    """A billing export the process sandbox serves."""

    billing_account_id: str
    billing_project: str
    dataset: str
    projects: tuple[tuple[str, str], ...]  # (project id, display name)
    location: str = "US"
    seed: int = 20261201

    @property
    def table_ref(self) -> TableRef:
        return TableRef(
            self.billing_project, self.dataset, standard_table_name(self.billing_account_id)
        )

    @property
    def table_name(self) -> str:
        ref = self.table_ref
        return f"{ref.project}.{ref.dataset}.{ref.table}"


DEMO_EXPORT = SandboxExport(
    billing_account_id="0A1B2C-3D4E5F-6A7B8C",
    billing_project="umbrella-billing",
    dataset="cloud_billing_export",
    projects=(
        ("umbrella-web-prod", "umbrella web prod"),
        ("umbrella-data-lake", "umbrella data lake"),
        ("umbrella-ml-dev", "umbrella ml dev"),
    ),
)
DEMO_SERVICE_ACCOUNT = "finops-reader@umbrella-billing.iam.gserviceaccount.com"


def is_sandbox_endpoint(url: str | None) -> bool:
    """Whether ``url`` names the sandbox's reserved host."""
    return bool(url) and (urlsplit(url).hostname or "").lower() == SANDBOX_HOST


def is_recommender_sandbox_endpoint(url: str | None) -> bool:
    """Whether ``url`` names the sandbox's reserved Recommender host."""
    return bool(url) and (urlsplit(url).hostname or "").lower() == RECOMMENDER_SANDBOX_HOST


class _ForwardingAdapter(requests.adapters.HTTPAdapter):
    """Sends requests for a reserved host to the local sandbox instead."""

    def __init__(self, target: str, prefix: str = SANDBOX_API_ENDPOINT) -> None:
        super().__init__()
        self._target = target
        self._prefix = prefix

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        request.url = self._target + str(request.url)[len(self._prefix) :]
        return super().send(request, **kwargs)


_lock = threading.Lock()
_sandbox: BigQuerySandbox | None = None


def process_sandbox(now: dt.datetime | None = None) -> BigQuerySandbox:
    """This process's sandbox, started and seeded with the demo export on first use."""
    global _sandbox
    with _lock:
        if _sandbox is None:
            sandbox = BigQuerySandbox().start()
            seed_sandbox_export(sandbox, DEMO_EXPORT, now=now)
            _sandbox = sandbox
        return _sandbox


def seed_sandbox_export(
    sandbox: BigQuerySandbox, export: SandboxExport, *, now: dt.datetime | None = None
) -> int:
    """Create ``export``'s table holding every row exported by ``now``; returns the row count."""
    now = now or dt.datetime.now(dt.UTC)
    generator = BillingExportGenerator(
        seed=export.seed, billing_account_id=export.billing_account_id
    )
    start = first_of_month(now.date(), SANDBOX_HISTORY_MONTHS)
    create_export_table(sandbox.engine, export.table_ref, location=export.location)
    rows = generator.rows([project for project, _ in export.projects], start, now.date(), as_of=now)
    return seed_export(sandbox.engine, export.table_ref, rows)


def _trust_client_key(sandbox: BigQuerySandbox, client: Any, credentials: Any = None) -> None:
    """Let the sandbox verify the signatures of the client's service-account key.

    The key was made for the sandbox (``finops demo``) in another process, maybe; its public
    half is derived from the signer google-auth built for the client.
    """
    credentials = credentials if credentials is not None else client._credentials
    signer = getattr(credentials, "signer", None)
    # google-auth wraps the cryptography key in an implementation object; both are private,
    # which only this sandbox hook relies on.
    private_key = getattr(getattr(signer, "_impl", signer), "_key", None)
    email = getattr(credentials, "service_account_email", None)
    if private_key is None or not email:
        return
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sandbox.trust_service_account(
        email,
        public_pem,
        job_projects=[DEMO_EXPORT.billing_project],
        readable_tables=[DEMO_EXPORT.table_ref],
        # The demo's reader may list its projects' recommendations (roles/recommender.viewer).
        recommender_projects=[project for project, _ in DEMO_EXPORT.projects],
    )


def attach_sandbox(client: Any) -> None:
    """Forward the client's requests for the reserved host to this process's sandbox."""
    sandbox = process_sandbox()
    _trust_client_key(sandbox, client)
    adapter = _ForwardingAdapter(sandbox.endpoint)
    session = client._http
    session.mount(SANDBOX_API_ENDPOINT, adapter)
    token_session = getattr(session, "_auth_request_session", None)
    if token_session is not None:
        token_session.mount(SANDBOX_API_ENDPOINT, adapter)


def attach_recommender_sandbox(client: Any) -> None:
    """Forward a RecommenderClient's (REST transport) requests for the reserved Recommender
    host, and its token requests for the reserved BigQuery host, to this process's sandbox."""
    sandbox = process_sandbox()
    transport = client._transport
    _trust_client_key(sandbox, client, transport._credentials)
    session = transport._session
    session.mount(
        RECOMMENDER_SANDBOX_ENDPOINT,
        _ForwardingAdapter(sandbox.endpoint, prefix=RECOMMENDER_SANDBOX_ENDPOINT),
    )
    token_session = getattr(session, "_auth_request_session", None)
    if token_session is not None:
        token_session.mount(SANDBOX_API_ENDPOINT, _ForwardingAdapter(sandbox.endpoint))
