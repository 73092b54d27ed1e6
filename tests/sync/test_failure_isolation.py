"""One bad account must not stop the others: a real run with tampered, denied and broken ones."""

from __future__ import annotations

import datetime as dt
import json
import socket

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
from finops_pipeline.cli.onboarding import add_account
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import get_account, register_account
from finops_pipeline.db.sync_state import outcomes_for_run
from finops_pipeline.db.tenants import ensure_tenant
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret, open_credentials
from finops_pipeline.sync.collection import collect_costs
from finops_pipeline.sync.ranges import DateRange, account_date_key
from tests.aws_iam import (
    CE_READ_POLICY,
    CUSTOMER_ACCOUNT,
    create_customer_role,
    create_pipeline_principal,
    create_user,
)
from tests.ce_responses import (
    TWO_SERVICES,
    StrictMotoCostExplorer,
    expected_request,
    expected_rows,
    paginate,
    queue_moto_pages,
    simple_days,
)
from tests.dates import RECENT_START

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("sts_trust")]

START = RECENT_START
DAYS = 3
SERVICES = TWO_SERVICES


def keys_account(
    connection: psycopg.Connection, ring: KeyRing, name: str, number: str, policy
) -> tuple[str, str]:
    user = create_user(name, policy)
    account_id = add_account(
        connection,
        ring,
        tenant_id=f"tenant-{name}",
        name=name,
        provider="aws",
        provider_account_id=number,
        access_key_id=user.access_key_id,
        secret_access_key=Secret(user.secret_access_key),
    ).account_id
    return account_id, user.secret_access_key


def test_good_account_loads_while_tampered_denied_untrusted_and_mismatched_ones_fail(
    aws: None,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    good, good_secret = keys_account(connection, key_ring, "good", "123456789012", CE_READ_POLICY)
    tampered, tampered_secret = keys_account(
        connection, key_ring, "tampered", "123456789013", CE_READ_POLICY
    )
    connection.execute(
        "UPDATE cloud_accounts SET credentials_encrypted = "
        "set_byte(credentials_encrypted, 25, get_byte(credentials_encrypted, 25) # 1) "
        "WHERE id = %s",
        (tampered,),
    )
    denied, denied_secret = keys_account(connection, key_ring, "denied", "123456789014", None)
    pipeline_user, _ = create_pipeline_principal()
    external_id = ensure_tenant(connection, "tenant-role")
    # The customer pasted another tenant's external id into the trust policy.
    role_arn = create_customer_role(
        "finops-reader", pipeline_arn=pipeline_user.arn, external_id="finops-someone-else"
    )
    untrusted = add_account(
        connection,
        key_ring,
        tenant_id="tenant-role",
        name="role",
        provider="aws",
        provider_account_id=CUSTOMER_ACCOUNT,
        role_arn=role_arn,
    ).account_id
    # An Azure subscription whose stored credentials are an AWS key.
    mismatched = register_account(
        connection,
        key_ring,
        tenant_id="tenant-azure",
        name="azure",
        provider="azure",
        provider_account_id="sub-0001",
        credentials=create_user("azure", None).credentials,
    )
    ids = [good, tampered, denied, untrusted, mismatched]
    queue_moto_pages(paginate(simple_days(START, DAYS, SERVICES), per_page=10))

    with dg.instance_for_test() as instance, enable_iam_authentication():
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
                "gcp_billing_export": GcpBillingExportResource(),
                "aws_cost_explorer": AwsCostExplorerResource(
                    pipeline_access_key_id=pipeline_user.access_key_id,
                    pipeline_secret_access_key=pipeline_user.secret_access_key,
                ),
                "azure_cost_management": AzureCostManagementResource(),
            },
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(ids[0], START),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(
                    ids[-1], START + dt.timedelta(days=DAYS - 1)
                ),
            },
            raise_on_error=False,
        )

    assert not result.success
    loaded = connection.execute(
        "SELECT cloud_account_id::text, count(*) FROM cost_data GROUP BY 1"
    ).fetchall()
    assert loaded == [(good, DAYS * len(SERVICES))]

    outcomes = {o.cloud_account_id: o for o in outcomes_for_run(connection, result.run_id)}
    assert set(outcomes) == set(ids)
    assert outcomes[good].status == "success" and outcomes[good].rows_in_window == 6
    expected = {
        tampered: ("TamperedCiphertextError", "Re-enter"),
        denied: ("ProviderAccessDeniedError", "ce:GetCostAndUsage"),
        untrusted: ("ProviderAccessDeniedError", "external id"),
        mismatched: ("CredentialError", "finops accounts add --provider azure"),
    }
    for account_id, (error_type, advice) in expected.items():
        outcome = outcomes[account_id]
        assert outcome.status == "failed" and outcome.rows_written == 0
        assert outcome.error.startswith(f"{error_type}: "), outcome.error
        assert advice in outcome.error

    failure = next(e for e in result.all_events if e.is_step_failure)
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("4 of 5 accounts failed; the other one was loaded.\n")
    everything = description + json.dumps([o.error for o in outcomes.values()])
    for secret in (good_secret, tampered_secret, denied_secret, external_id, encryption_key):
        assert secret not in everything


def test_permanent_failures_are_not_retried_and_throttling_is(
    aws: None, key_ring: KeyRing, connection: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permanence is what the asset's dg.Failure(allow_retries=...) is computed from."""
    denied, _ = keys_account(connection, key_ring, "denied", "123456789014", None)
    throttled, _ = keys_account(connection, key_ring, "throttled", "123456789015", CE_READ_POLICY)
    throttled_key_id = create_user_key_of(connection, throttled, key_ring)
    attempts = []
    original = CostExplorerResponse.get_cost_and_usage

    def throttle_one_account(self):
        if self.get_access_key() == throttled_key_id:
            attempts.append(1)
            raise JsonRESTError("LimitExceededException", "Rate exceeded")
        return original(self)

    monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", throttle_one_account)
    window = DateRange(START, START)
    with enable_iam_authentication():
        report = collect_costs(
            {denied: [window], throttled: [window]},
            connection=connection,
            decrypt=lambda account: open_credentials(account, key_ring),
            collectors={"aws": AwsCostExplorerResource(max_attempts=2)},
            run_id="run-x",
        )
    permanence = {f.account_id: (f.error_type, f.permanent) for f in report.failures}
    assert permanence == {
        denied: ("ProviderAccessDeniedError", True),
        throttled: ("ProviderThrottledError", False),
    }
    # botocore's standard retry mode retried the throttled call: max_attempts counts retries.
    assert len(attempts) == 1 + 2


def create_user_key_of(connection: psycopg.Connection, account_id: str, ring: KeyRing) -> str:
    account = get_account(connection, account_id)
    return open_credentials(account, ring).access_key_id


def test_a_blob_copied_from_another_tenants_row_does_not_decrypt(
    aws: None,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    """Someone with write access to the table moves tenant A's credentials onto B's account."""
    victim, _ = keys_account(connection, key_ring, "victim", "123456789012", CE_READ_POLICY)
    thief, _ = keys_account(connection, key_ring, "thief", "123456789013", None)
    connection.execute(
        "UPDATE cloud_accounts SET credentials_encrypted = "
        "(SELECT credentials_encrypted FROM cloud_accounts WHERE id = %s) WHERE id = %s",
        (victim, thief),
    )
    queue_moto_pages(paginate(simple_days(START, 1, SERVICES), per_page=10))
    with dg.instance_for_test() as instance, enable_iam_authentication():
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [victim, thief])
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
                "gcp_billing_export": GcpBillingExportResource(),
                "aws_cost_explorer": AwsCostExplorerResource(),
                "azure_cost_management": AzureCostManagementResource(),
            },
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(victim, START),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(thief, START),
            },
            raise_on_error=False,
        )
    outcomes = {o.cloud_account_id: o for o in outcomes_for_run(connection, result.run_id)}
    assert outcomes[victim].status == "success"
    assert outcomes[thief].status == "failed"
    assert outcomes[thief].error.startswith("TamperedCiphertextError: ")
    tenants = connection.execute("SELECT DISTINCT tenant_id FROM cost_data").fetchall()
    assert tenants == [("tenant-victim",)]


def materialize_accounts(
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    ids: list[str],
    start: dt.date,
    end: dt.date,
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
    return dg.materialize(
        [cost_data],
        instance=instance,
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
            # One botocore retry (max_attempts counts retries) keeps the step's retry policy
            # the thing under test.
            "gcp_billing_export": GcpBillingExportResource(),
            "aws_cost_explorer": AwsCostExplorerResource(max_attempts=1),
            "azure_cost_management": AzureCostManagementResource(),
        },
        tags={
            ASSET_PARTITION_RANGE_START_TAG: account_date_key(ids[0], start),
            ASSET_PARTITION_RANGE_END_TAG: account_date_key(ids[-1], end),
        },
        raise_on_error=False,
    )


def step_retries(result: dg.ExecuteInProcessResult) -> int:
    return len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"])


def keys_only_account(connection: psycopg.Connection, ring: KeyRing, tenant: str, key: str, **kw):
    return register_account(
        connection,
        ring,
        tenant_id=tenant,
        name=tenant,
        provider="aws",
        provider_account_id="123456789012",
        credentials=AwsAccessKeyCredentials(access_key_id=key, secret_access_key=Secret("s3cr3t")),
        **kw,
    )


def test_a_permanent_and_a_transient_failure_in_one_run_retry_the_transient_one(
    aws: None,
    moto_ce: StrictMotoCostExplorer,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    denied = keys_only_account(connection, key_ring, "tenant-denied", "AKIADENIEDKEY0000009")
    throttled = keys_only_account(connection, key_ring, "tenant-throttled", "AKIATHROTTLED0000009")
    queue_moto_pages(paginate(simple_days(START, 2, SERVICES), per_page=10))
    original = CostExplorerResponse.get_cost_and_usage
    throttled_calls: list[bool] = []

    def answer(self: CostExplorerResponse) -> str:
        authorization = self.headers.get("Authorization", "")
        if "AKIADENIEDKEY0000009" in authorization:
            raise JsonRESTError("AccessDeniedException", "not authorized")
        # Throttled through botocore's own retry (max_attempts=1: two attempts) of the first
        # step attempt; answered on the step's retry.
        if "AKIATHROTTLED0000009" in authorization and len(throttled_calls) < 2:
            throttled_calls.append(True)
            raise JsonRESTError("LimitExceededException", "Rate exceeded")
        return original(self)

    monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", answer)
    end = START + dt.timedelta(days=1)
    with dg.instance_for_test() as instance:
        result = materialize_accounts(
            instance, database_url, encryption_key, [denied, throttled], START, end
        )

    # The first attempt failed both accounts, one of them transiently: so the step is retried
    # once, the throttled account loads, and the denied one (permanent) stops further retries.
    assert not result.success
    assert step_retries(result) == 1
    outcomes = {o.cloud_account_id: o for o in outcomes_for_run(connection, result.run_id)}
    assert (outcomes[throttled].status, outcomes[throttled].rows_in_window) == ("success", 4)
    assert outcomes[denied].status == "failed"
    assert outcomes[denied].error.startswith("ProviderAccessDeniedError: AWS denied")
    loaded = connection.execute(
        "SELECT cloud_account_id::text, date, service, usage_type, unblended_cost "
        "FROM cost_data ORDER BY 2, 3"
    ).fetchall()
    assert loaded == [(throttled, *row) for row in expected_rows(START, 2, SERVICES)]
    assert moto_ce.requests == [expected_request(START, end)]  # the one that was answered


def test_a_network_error_is_transient_so_the_run_retries_it(
    aws: None,
    moto_ce: StrictMotoCostExplorer,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    with socket.socket() as sock:  # a port nothing listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = keys_only_account(
        connection, key_ring, "tenant-offline", "AKIAUNREACHABLE00009", endpoint_url=closed
    )
    message = (
        "Could not complete the Cost Explorer call (EndpointConnectionError); no partial data "
        "was kept. Check network access to Cost Explorer and retry."
    )
    report = collect_costs(
        {unreachable: [DateRange(START, START)]},
        connection=connection,
        decrypt=lambda account: open_credentials(account, key_ring),
        collectors={"aws": AwsCostExplorerResource(max_attempts=1)},
        run_id="run-offline",
    )
    assert [(f.error_type, f.message, f.permanent) for f in report.failures] == [
        ("ProviderError", message, False)
    ]

    with dg.instance_for_test() as instance:
        result = materialize_accounts(
            instance, database_url, encryption_key, [unreachable], START, START
        )
    assert not result.success
    assert step_retries(result) == cost_data.op.retry_policy.max_retries == 3
    (outcome,) = outcomes_for_run(connection, result.run_id)
    assert (outcome.status, outcome.error) == ("failed", f"ProviderError: {message}")
    assert moto_ce.requests == []  # nothing ever reached Cost Explorer
