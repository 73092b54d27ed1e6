"""Assume-role accounts: validation, session refresh, and expiry in the middle of a paged fetch.

moto enforces the trust policy (principal and ``sts:ExternalId``) and identity policies inside
``enable_iam_authentication()``; see tests/aws_iam.py.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from moto.ce.responses import CostExplorerResponse
from moto.core.authorization import enable_iam_authentication
from moto.core.exceptions import JsonRESTError

from finops_pipeline.assets import cost_data
from finops_pipeline.cli.onboarding import add_account, validate_account
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.sync_state import outcomes_for_run
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.aws.client import client_config
from finops_pipeline.providers.aws.credentials import AwsRoleCredentials
from finops_pipeline.providers.aws.paging import fetch_all_pages
from finops_pipeline.providers.aws.request import build_daily_cost_request
from finops_pipeline.providers.aws.roles import session_for
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.ranges import account_date_key
from tests.aws_iam import (
    CUSTOMER_ACCOUNT,
    assume_role_calls,
    create_customer_role,
    create_pipeline_principal,
    create_user,
)
from tests.ce_responses import (
    TWO_SERVICES,
    expected_rows,
    paginate,
    queue_moto_pages,
    simple_days,
)
from tests.dates import RECENT_START

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("sts_trust")]

START = RECENT_START
SERVICES = TWO_SERVICES


def onboard_role(
    connection: psycopg.Connection,
    ring: KeyRing,
    *,
    pipeline_arn: str,
    role_name: str = "finops-reader",
    require_external_id: bool = True,
    wrong_external_id: bool = False,
    tenant: str = "tenant-a",
) -> tuple[str, str, str]:
    """Register a role account the way onboarding does: external id first, then the role."""
    from finops_pipeline.db.tenants import ensure_tenant

    external_id = ensure_tenant(connection, tenant)
    trusted = "someone-elses-id-123" if wrong_external_id else external_id
    role_arn = create_customer_role(
        role_name, pipeline_arn=pipeline_arn, external_id=trusted if require_external_id else None
    )
    added = add_account(
        connection,
        ring,
        tenant_id=tenant,
        name="prod",
        provider="aws",
        provider_account_id=CUSTOMER_ACCOUNT,
        role_arn=role_arn,
    )
    assert added.external_id == external_id
    return added.account_id, role_arn, external_id


def test_validation_of_a_safe_role_passes_and_counts_the_paid_probe(
    aws: None, connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    user, principal = create_pipeline_principal()
    account_id, _role_arn, _ = onboard_role(connection, key_ring, pipeline_arn=user.arn)
    with enable_iam_authentication():
        report = validate_account(
            connection, key_ring, account_id, principal=principal, today=dt.date(2025, 3, 10)
        )
    assert report.ok, report.as_dict()
    assert [c.name for c in report.checks] == [
        "role_arn_account",
        "credentials_valid",
        "assumed_account_matches",
        "external_id_required",
        "cost_explorer_allowed",
    ]
    assert report.caller_account == CUSTOMER_ACCOUNT
    assert report.caller_arn.startswith(f"arn:aws:sts::{CUSTOMER_ACCOUNT}:assumed-role/")
    assert report.paid_requests == 1
    assert report.paid_request_cost_usd == "0.01"


def test_role_that_trusts_callers_without_external_id_is_rejected_and_disabled(
    aws: None, connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    user, principal = create_pipeline_principal()
    account_id, _, _ = onboard_role(
        connection, key_ring, pipeline_arn=user.arn, require_external_id=False
    )
    with enable_iam_authentication():
        report = validate_account(connection, key_ring, account_id, principal=principal)
    assert not report.ok
    assert report.unsafe_trust_policy
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["external_id_required"]
    assert "confused deputy" in failed[0].detail
    assert report.paid_requests == 0  # rejected before the paid probe
    status = connection.execute(
        "SELECT status FROM cloud_accounts WHERE id = %s", (account_id,)
    ).fetchone()
    assert status == ("disabled",)


def test_role_expecting_another_external_id_is_refused_with_an_actionable_message(
    aws: None, connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    user, principal = create_pipeline_principal()
    account_id, _, external_id = onboard_role(
        connection, key_ring, pipeline_arn=user.arn, wrong_external_id=True
    )
    with enable_iam_authentication():
        report = validate_account(connection, key_ring, account_id, principal=principal)
    assert not report.ok and not report.unsafe_trust_policy
    detail = report.checks[-1].detail
    assert "ProviderAccessDeniedError" in detail and "external id" in detail
    assert external_id not in json.dumps(report.as_dict())


def test_access_key_without_cost_explorer_permission_fails_validation_for_free(
    aws: None, connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    user = create_user("no-ce", policy=None)
    account_id = add_account(
        connection,
        key_ring,
        tenant_id="tenant-a",
        name="keys",
        provider="aws",
        provider_account_id="123456789012",
        access_key_id=user.access_key_id,
        secret_access_key=Secret(user.secret_access_key),
    ).account_id
    with enable_iam_authentication():
        report = validate_account(connection, key_ring, account_id, principal=None)
    names = {c.name: c.ok for c in report.checks}
    # GetCallerIdentity needs no permission: it passes, and proves nothing about Cost Explorer.
    assert names == {"credentials_valid": True, "cost_explorer_allowed": False}
    assert report.paid_requests == 0
    assert "ProviderAccessDeniedError" in report.checks[-1].detail


def test_role_account_needs_the_pipeline_principal() -> None:
    role = AwsRoleCredentials(
        role_arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/r", external_id=Secret("finops-abcdef")
    )
    with pytest.raises(ConfigurationError, match="FINOPS_PIPELINE_AWS_ACCESS_KEY_ID"):
        session_for(role, None)


def test_role_session_refreshes_during_a_long_paged_fetch(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, principal = create_pipeline_principal()
    role_arn = create_customer_role(
        "finops-reader", pipeline_arn=user.arn, external_id="finops-ext-0001"
    )
    role = AwsRoleCredentials(role_arn=role_arn, external_id=Secret("finops-ext-0001"))
    pages = paginate(simple_days(START, 12, SERVICES), per_page=2)  # 6 pages
    queue_moto_pages(pages, account_id=CUSTOMER_ACCOUNT)

    # Each page "takes" 25 minutes of a one-hour session: botocore must refresh before expiry.
    now = [dt.datetime.now(dt.UTC)]
    # One clock for both sides: STS stamps each session's expiry from it, botocore compares.
    monkeypatch.setattr("moto.sts.models.utcnow", lambda: now[0].replace(tzinfo=None))
    session = session_for(role, principal, clock=lambda: now[0])
    client = session.client("ce", config=client_config())
    signing_keys: list[str] = []

    def record_key(request, **kwargs) -> None:
        authorization = request.headers["Authorization"].decode()
        signing_keys.append(authorization.split("Credential=")[1].split("/")[0])

    client.meta.events.register("before-send.ce.GetCostAndUsage", record_key)

    def slow_call(**request):
        response = client.get_cost_and_usage(**request)
        now[0] += dt.timedelta(minutes=25)
        return response

    request = build_daily_cost_request(START, START + dt.timedelta(days=11))
    with enable_iam_authentication():
        paged = fetch_all_pages(slow_call, request)
    assert paged.paid_requests == 6 and paged.restarts == 0
    assert sum(len(p["ResultsByTime"]) for p in paged.pages) == 12
    # Pages at 0, 25 and 50 minutes on the first session, which then has 10 minutes left:
    # refreshed; pages at 75 and 100 on the second, refreshed again; the last on the third.
    assert assume_role_calls(role_arn) == 3
    assert len(set(signing_keys)) == assume_role_calls(role_arn)


def test_expired_session_mid_pagination_restarts_cleanly_in_a_real_run(
    aws: None,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, _principal = create_pipeline_principal()
    account_id, role_arn, _ = onboard_role(connection, key_ring, pipeline_arn=user.arn)
    queue_moto_pages(
        paginate(simple_days(START, 6, SERVICES), per_page=2), account_id=CUSTOMER_ACCOUNT
    )

    # moto never expires sessions; AWS does, and may do so before our clock says it should
    # (skew, or the customer revoking sessions). Answer page 2 once as AWS would.
    original = CostExplorerResponse.get_cost_and_usage
    expired = []

    def expire_once(self):
        if "NextPageToken" in json.loads(self.body) and not expired:
            expired.append(True)
            raise JsonRESTError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        return original(self)

    monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", expire_once)
    with dg.instance_for_test() as instance, enable_iam_authentication():
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [account_id])
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
                "gcp_billing_export": GcpBillingExportResource(),
                "aws_cost_explorer": AwsCostExplorerResource(
                    pipeline_access_key_id=user.access_key_id,
                    pipeline_secret_access_key=user.secret_access_key,
                ),
                "azure_cost_management": AzureCostManagementResource(),
            },
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(account_id, START),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(
                    account_id, START + dt.timedelta(days=5)
                ),
            },
        )
    assert result.success and expired
    # The values, not just the row count: pages kept from the aborted attempt would double
    # the first page's days.
    rows = connection.execute(
        "SELECT date, service, usage_type, unblended_cost, amortized_cost, net_unblended_cost "
        "FROM cost_data ORDER BY 1, 2"
    ).fetchall()
    assert rows == [
        (day, service, usage_type, cost, cost, cost)
        for day, service, usage_type, cost in expected_rows(START, 6, SERVICES)
    ]
    # Page 1 before the expiry, then 3 pages after the restart: the failed request was free.
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    assert metadata["paid_ce_requests"].value == 4
    assert assume_role_calls(role_arn) == 2  # the expiry forced a fresh session
    (outcome,) = outcomes_for_run(connection, result.run_id)
    assert outcome.status == "success" and outcome.paid_requests == 4


def test_one_role_session_serves_all_of_an_accounts_ranges_in_a_run(
    aws: None, connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    from finops_pipeline.db.accounts import get_account
    from finops_pipeline.security.credentials import open_credentials
    from finops_pipeline.sync.ranges import DateRange

    user, _ = create_pipeline_principal()
    account_id, role_arn, _ = onboard_role(connection, key_ring, pipeline_arn=user.arn)
    account = get_account(connection, account_id)
    credentials = open_credentials(account, key_ring)
    resource = AwsCostExplorerResource(
        pipeline_access_key_id=user.access_key_id,
        pipeline_secret_access_key=user.secret_access_key,
    )
    with enable_iam_authentication():
        for offset in (0, 5):
            day = START + dt.timedelta(days=offset)
            fetched = resource.fetch_daily_costs(account, credentials, DateRange(day, day))
            assert fetched.paid_requests == 1
    assert assume_role_calls(role_arn) == 1
