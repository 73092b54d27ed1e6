"""GCP's entry in the provider registry."""

from __future__ import annotations

import datetime as dt
from typing import Any

from finops_pipeline.constants import PROVIDER_GCP
from finops_pipeline.providers.base import ProviderSandbox, ProviderSpec, SandboxAccount
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.onboarding import GCP_ONBOARDING
from finops_pipeline.providers.gcp.schedule import window_with_moved_days
from finops_pipeline.providers.gcp.validation import validate_account


def attach_sandbox_to_sandbox_endpoint(client: Any, api_endpoint: str | None) -> None:
    """Serve sandbox exports from this process's BigQuery double; others talk to Google.

    Sandbox exports (finops demo) name a reserved ``.invalid`` host; the sandbox module is
    imported only when one is used, so production clients never load it.
    """
    if not api_endpoint or ".invalid" not in api_endpoint:
        return
    from finops_pipeline.providers.gcp.sandbox.hook import attach_sandbox, is_sandbox_endpoint

    if is_sandbox_endpoint(api_endpoint):
        attach_sandbox(client)
        return
    from finops_pipeline.providers.gcp.sandbox.hook import (
        attach_recommender_sandbox,
        is_recommender_sandbox_endpoint,
    )

    if is_recommender_sandbox_endpoint(api_endpoint):
        attach_recommender_sandbox(client)


#: The reserved host of the sandbox double; kept here so this module never imports it.
SANDBOX_HOST = "bigquery.sandbox.finops.invalid"
#: Its Recommender host: sandbox projects' Recommender requests go there, never to Google.
RECOMMENDER_SANDBOX_HOST = "recommender.sandbox.finops.invalid"


def _is_sandbox_endpoint(url: str | None) -> bool:
    return bool(url) and SANDBOX_HOST in str(url)


def _demo_accounts() -> tuple[SandboxAccount, ...]:
    from finops_pipeline.providers.gcp.sandbox.demo import demo_accounts

    return demo_accounts()


def _daily_history_start(today: dt.date) -> dt.date:
    # The export keeps everything since it was enabled; the double holds 13 months.
    from finops_pipeline.sync.windows import first_of_month

    return first_of_month(today, 13)


SANDBOX = ProviderSandbox(
    endpoint_url=f"https://{SANDBOX_HOST}",
    is_sandbox_endpoint=_is_sandbox_endpoint,
    demo_accounts=_demo_accounts,
    daily_history_start=_daily_history_start,
    history_note="the GCP sandbox export holds 13 months before the current one.",
    # Its rows are a function of the moment they are read, like the real export.
    start_pull=None,
)

GCP = ProviderSpec(
    name=PROVIDER_GCP,
    display_name="GCP Cloud Billing export (BigQuery)",
    credential_classes=(GcpServiceAccountCredentials,),
    resource_key="gcp_billing_export",
    client_hook=attach_sandbox_to_sandbox_endpoint,
    onboarding=GCP_ONBOARDING,
    validate=validate_account,
    # BigQuery bills bytes scanned, not requests: see the gcp_bytes_* metadata.
    paid_api="BigQuery",
    price_per_request_usd="0.00",
    sandbox=SANDBOX,
    # The export's export_time watermarks tell which loaded days it restated since.
    widen_scheduled_window=window_with_moved_days,
)
