"""``finops accounts validate`` for a GCP project: a free dry run of the backfill query.

A dry run is a real ``jobs.insert`` that BigQuery plans but does not execute: it needs the key
to sign in, BigQuery Job User on the job project and BigQuery Data Viewer on the table, and it
answers with the bytes the query would process, without billing any.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.base import ClientHook, ValidationReport
from finops_pipeline.providers.gcp.client import maximum_bytes_billed_from_env
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.onboarding import required_roles, validate_billing_export
from finops_pipeline.security.credentials import Credentials


def validate_account(
    account: CloudAccount,
    credentials: Credentials,
    endpoints: Mapping[str, str | None],
    *,
    client_hook: ClientHook | None = None,
    today: dt.date | None = None,
    maximum_bytes_billed: int | None = None,
    **options: Any,
) -> ValidationReport:
    """The registry's validation probe for GCP projects (see ``providers.base.AccountValidator``).

    The export's own endpoints are in its credentials; ``endpoints`` is not used.
    """
    report = ValidationReport(account_id=account.id, paid_api="BigQuery")
    if not isinstance(credentials, GcpServiceAccountCredentials):
        report.add("credentials", False, f"not a GCP service-account key ({credentials.kind})")
        return report
    report.caller_arn = credentials.key.client_email
    report.caller_account = account.provider_account_id
    report.add("key", True, f"service-account key of {credentials.key.client_email} loaded")
    cap = maximum_bytes_billed or maximum_bytes_billed_from_env(os.environ)
    try:
        dry_run = validate_billing_export(
            credentials,
            [account.provider_account_id],
            maximum_bytes_billed=cap,
            today=today,
            client_hook=client_hook,
        )
    except FinopsError as error:
        report.add("dry run", False, f"{type(error).__name__}: {error}")
        for role in required_roles(credentials):
            report.add("needs", False, role)
        return report
    for line in dry_run.lines():
        report.add("dry run", True, line)
    return report
