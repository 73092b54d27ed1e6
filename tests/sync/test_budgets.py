"""The per-tenant monthly paid-request budget through real Dagster runs and the sandbox:
refused before any request, counted in Postgres across runs, settled to the real count."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from click.testing import CliRunner

from finops_pipeline.assets import cost_data
from finops_pipeline.cli.commands import main
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.request_budget import UNIT_QPU, budget_statuses, set_budget
from finops_pipeline.providers.aws.sandbox import (
    SANDBOX_ENDPOINT_URL,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.resources import (
    AwsCostExplorerResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import account_date_key
from tests.azure_sandbox import PRODUCTION, add_azure_subscription
from tests.resources import pipeline_resources

pytestmark = pytest.mark.integration

END = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
START = END - dt.timedelta(days=9)


@pytest.fixture(autouse=True)
def sandbox_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "0")
    reset_request_counts()


def register(connection: psycopg.Connection, ring: KeyRing, tenant: str, number: str) -> str:
    return register_account(
        connection,
        ring,
        tenant_id=tenant,
        name=f"{tenant} {number}",
        provider="aws",
        provider_account_id=number,
        credentials=sandbox_credentials(number),
        endpoint_url=SANDBOX_ENDPOINT_URL,
    )


def run(
    instance: dg.DagsterInstance, database_url: str, encryption_key: str, ids: list[str]
) -> dg.ExecuteInProcessResult:
    known = set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME))
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [i for i in ids if i not in known])
    order = instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
    ids = sorted(ids, key=order.index)
    return dg.materialize(
        [cost_data],
        instance=instance,
        resources=pipeline_resources(database_url, encryption_key),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: account_date_key(ids[0], START),
            ASSET_PARTITION_RANGE_END_TAG: account_date_key(ids[-1], END),
        },
        raise_on_error=False,
    )


def counted(connection: psycopg.Connection) -> dict[str, int]:
    return dict(
        connection.execute(
            "SELECT cloud_account_id::text, requests FROM paid_request_usage"
        ).fetchall()
    )


def test_a_run_over_the_budget_fails_before_any_request_and_loads_nothing(
    monkeypatch: pytest.MonkeyPatch,
    connection: psycopg.Connection,
    key_ring: KeyRing,
    database_url: str,
    encryption_key: str,
) -> None:
    monkeypatch.setenv("FINOPS_RECONCILE_AWS", "1")
    ids = [register(connection, key_ring, "globex", n) for n in ("320000000001", "320000000002")]
    # Two accounts need a page and a reconciliation total each: 4 requests at least.
    set_budget(connection, "globex", 3)
    with dg.instance_for_test() as instance:
        result = run(instance, database_url, encryption_key, ids)
    assert not result.success
    assert request_counts().total == 0
    for table in ("cost_data", "cost_data_days", "cost_provider_totals", "paid_request_usage"):
        assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
    assert failure.user_failure_data is not None
    description = failure.user_failure_data.description or ""
    assert "All 2 accounts failed; nothing was loaded." in description
    # Permanent: retrying in the same month meets the same budget, so the step is not retried.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    errors = connection.execute(
        "SELECT DISTINCT error FROM account_sync_runs WHERE status = 'failed'"
    ).fetchall()
    assert len(errors) == 1
    assert errors[0][0].startswith(
        "RequestBudgetExceededError: Tenant 'globex' has used 0 of its 3 paid requests for "
        f"{dt.datetime.now(dt.UTC):%Y-%m}, and this run needs at least 4 more; nothing was "
        "requested from the provider"
    )


def test_the_budget_holds_across_runs_and_counts_every_page(
    monkeypatch: pytest.MonkeyPatch,
    connection: psycopg.Connection,
    key_ring: KeyRing,
    database_url: str,
    encryption_key: str,
    tmp_path: Path,
) -> None:
    # Small pages: a window costs more than the one request reserved for it.
    monkeypatch.setenv("FINOPS_SANDBOX_PAGE_SIZE", "200")
    globex = [register(connection, key_ring, "globex", n) for n in ("320000000001", "320000000002")]
    initech = register(connection, key_ring, "initech", "430000000001")
    with dg.instance_for_test() as instance:
        first = run(instance, database_url, encryption_key, globex)
        assert first.success
        spent = request_counts().paid
        assert spent > 2
        assert sum(counted(connection).values()) == spent
        set_budget(connection, "globex", spent + 1)
        # The same run again needs two more: refused; initech, without a budget, still loads.
        second = run(instance, database_url, encryption_key, [*globex, initech])
    assert not second.success
    assert set(request_counts().by_account) == {"320000000001", "320000000002", "430000000001"}
    assert request_counts().paid - spent == counted(connection)[initech]
    statuses = budget_statuses(connection)
    assert (statuses["globex"].used, statuses["globex"].limit) == (spent, spent + 1)
    assert statuses["initech"].limit is None
    metadata_run = second.asset_materializations_for_node("cost_data")
    assert metadata_run == []  # the failed run reports through its failure

    env = {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_HOME": str(tmp_path),
    }
    runner = CliRunner()
    shown = runner.invoke(main, ["budget", "show"], env=env)
    month = f"{dt.datetime.now(dt.UTC):%Y-%m}"
    assert f"tenant globex: {spent} of {spent + 1} requests in {month}" in shown.output
    assert "tenant initech:" in shown.output and "(no budget)" in shown.output
    listing = runner.invoke(main, ["accounts", "list"], env=env).output
    assert f"tenant globex: {spent} of {spent + 1} requests in {month}" in listing
    raised = runner.invoke(
        main, ["budget", "set", "--tenant", "globex", "--monthly-requests", "1000"], env=env
    )
    assert raised.exit_code == 0 and f"{spent} of 1000 requests" in raised.output
    assert runner.invoke(main, ["budget", "set", "--tenant", "globex"], env=env).exit_code == 2


def test_the_success_metadata_shows_the_spend(
    connection: psycopg.Connection,
    key_ring: KeyRing,
    database_url: str,
    encryption_key: str,
) -> None:
    account = register(connection, key_ring, "globex", "320000000001")
    set_budget(connection, "globex", 50)
    with dg.instance_for_test() as instance:
        result = run(instance, database_url, encryption_key, [account])
    assert result.success
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    month = f"{dt.datetime.now(dt.UTC):%Y-%m}"
    assert metadata["paid_requests_this_month"].value == {
        "globex": f"{request_counts().paid} of 50 requests in {month}"
    }


def test_recommendation_refreshes_count_against_the_budget(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    from finops_pipeline.security.credentials import open_credentials
    from finops_pipeline.sync.budgets import BudgetMeter
    from finops_pipeline.sync.recommendation_refresh import refresh_accounts

    account = register(connection, key_ring, "globex", "320000000001")
    set_budget(connection, "globex", 0)

    def refresh() -> object:
        return refresh_accounts(
            [account],
            connection=connection,
            decrypt=lambda a: open_credentials(a, key_ring),
            collectors={"aws": AwsCostExplorerResource()},
            meter=BudgetMeter(connection, purpose="refreshing the recommendations"),
        )

    refused = refresh()
    assert [f.error_type for f in refused.failures] == ["RequestBudgetExceededError"]  # type: ignore[attr-defined]
    assert request_counts().total == 0
    set_budget(connection, "globex", 100)
    refreshed = refresh()
    assert not refreshed.failures  # type: ignore[attr-defined]
    assert request_counts().paid >= 2
    assert counted(connection) == {account: request_counts().paid}


def test_azure_counts_qpu_refuses_over_its_budget_before_any_query_and_settles_to_the_qpu(
    monkeypatch: pytest.MonkeyPatch,
    connection: psycopg.Connection,
    key_ring: KeyRing,
    database_url: str,
    encryption_key: str,
) -> None:
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    monkeypatch.setenv("FINOPS_RECONCILE_AZURE", "1")
    subscription = add_azure_subscription(connection, key_ring, PRODUCTION, tenant="contoso")
    # One window needs ActualCost, AmortizedCost and the ungrouped total: 3 QPU at least.
    env = {"DATABASE_URL": database_url, "ENCRYPTION_KEY": encryption_key}
    capped = CliRunner().invoke(
        main,
        ["budget", "set", "--tenant", "contoso", "--unit", "qpu", "--monthly-requests", "2"],
        env=env,
    )
    assert capped.exit_code == 0, capped.output
    assert "tenant contoso: 0 of 2 QPU in " in capped.output
    with dg.instance_for_test() as instance:
        refused = run(instance, database_url, encryption_key, [subscription])
        assert not refused.success
        failure = next(e for e in refused.all_events if e.is_step_failure).step_failure_data
        assert failure.user_failure_data is not None
        # No Azure window ran, so no request or QPU is reported.
        assert "azure_requests" not in failure.user_failure_data.metadata
        for table in ("cost_data", "cost_provider_totals", "paid_request_usage"):
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        error = connection.execute(
            "SELECT error FROM account_sync_runs WHERE status = 'failed'"
        ).fetchone()[0]
        assert error.startswith(
            "RequestBudgetExceededError: Tenant 'contoso' has used 0 of its 2 QPU for "
        ), error
        assert "needs at least 3 more" in error
        assert "`finops budget set --tenant contoso --unit qpu --monthly-requests N`" in error

        set_budget(connection, "contoso", 100, unit=UNIT_QPU)
        loaded = run(instance, database_url, encryption_key, [subscription])
    assert loaded.success
    metadata = loaded.asset_materializations_for_node("cost_data")[0].metadata
    qpu = metadata["azure_qpu_consumed"].value
    assert qpu >= 3
    # Settled to the QPU consumed; Cost Explorer's paid requests stay Cost Explorer's only.
    assert counted(connection) == {subscription: qpu}
    assert metadata["paid_ce_requests"].value == 0
    statuses = budget_statuses(connection, unit=UNIT_QPU)
    assert (statuses["contoso"].used, statuses["contoso"].limit) == (qpu, 100)
    # The request budget is untouched by Azure's QPU.
    assert "contoso" not in budget_statuses(connection)
