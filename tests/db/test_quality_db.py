"""The data-quality checks on real Postgres: sandbox data loaded by the production loader,
provider totals from the sandbox Cost Explorer through boto3, and real damage done to
``cost_data`` by deleting and altering rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from finops_pipeline.db.quality import (
    day_coverage,
    delete_loaded_days,
    latest_final_days,
    monthly_totals,
    record_loaded_days,
    sanity_facts,
)
from finops_pipeline.db.tenants import REPORTING_ROLE, tenant_transaction
from finops_pipeline.providers.aws.client import build_cost_explorer_client, client_config
from finops_pipeline.providers.aws.sandbox import SANDBOX_ENDPOINT_URL, sandbox_credentials
from finops_pipeline.providers.aws.spec import AWS
from finops_pipeline.quality import (
    MonthTotal,
    check_completeness,
    check_freshness,
    check_reconciliation,
    check_sanity,
)
from finops_pipeline.security.ciphertext import KeyRing
from tests.cost_rows import AS_OF, add_account, insert_cost, load_sandbox

pytestmark = pytest.mark.integration

START, END = dt.date(2025, 9, 1), dt.date(2025, 11, 30)
TODAY = dt.date(2025, 12, 4)
NUMBERS = {"tenant-a": ("320000000001", "320000000002"), "tenant-b": ("430000000001",)}


def sync(
    connection: psycopg.Connection,
    tenant: str,
    account: str,
    number: str,
    start: dt.date = START,
    end: dt.date = END,
    run_id: str = "run-1",
) -> None:
    """What one successful sync of a window leaves behind: rows, day markers, the run outcome."""
    with connection.transaction():
        load_sandbox(connection, tenant, account, number, start, end)
        record_loaded_days(
            connection,
            tenant_id=tenant,
            cloud_account_id=account,
            start=start,
            end_inclusive=end,
            run_id=run_id,
        )
    connection.execute(
        "INSERT INTO account_sync_runs (cloud_account_id, run_id, tenant_id, status, "
        "range_start, range_end) VALUES (%s, %s, %s, 'success', %s, %s)",
        (account, run_id, tenant, start, end),
    )


@pytest.fixture
def accounts(connection: psycopg.Connection, key_ring: KeyRing) -> dict[str, str]:
    """Number -> account id, every account synced for September to November."""
    ids = {}
    for tenant, numbers in NUMBERS.items():
        for number in numbers:
            ids[number] = add_account(connection, key_ring, tenant, number)
            sync(connection, tenant, ids[number], number)
    return ids


@pytest.fixture
def provider_totals(
    accounts: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[MonthTotal]:
    """Each account's own monthly totals, asked of the sandbox Cost Explorer without GroupBy."""
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.setenv("FINOPS_SANDBOX_AS_OF", AS_OF.isoformat())
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "0")
    totals = []
    for number, account in accounts.items():
        client = build_cost_explorer_client(
            sandbox_credentials(number),
            endpoint_url=SANDBOX_ENDPOINT_URL,
            config=client_config(),
            client_hook=AWS.client_hook,
        )
        response: dict[str, Any] = client.get_cost_and_usage(
            TimePeriod={
                "Start": START.isoformat(),
                "End": (END + dt.timedelta(days=1)).isoformat(),
            },
            Granularity="MONTHLY",
            Metrics=["UnblendedCost"],
        )
        assert "NextPageToken" not in response
        for period in response["ResultsByTime"]:
            metric = period["Total"]["UnblendedCost"]
            totals.append(
                MonthTotal(
                    account,
                    dt.date.fromisoformat(period["TimePeriod"]["Start"]),
                    metric["Unit"],
                    Decimal(metric["Amount"]),
                )
            )
    assert len(totals) == 3 * len(accounts)
    return totals


def reconcile(connection: psycopg.Connection, ids: list[str], provider: list[MonthTotal]) -> Any:
    return check_reconciliation(monthly_totals(connection, ids, START, END), provider, accounts=ids)


def test_untouched_data_passes_every_check(
    connection: psycopg.Connection, accounts: dict[str, str], provider_totals: list[MonthTotal]
) -> None:
    ids = list(accounts.values())
    results = [
        reconcile(connection, ids, provider_totals),
        check_freshness(latest_final_days(connection, ids), today=TODAY),
        check_completeness(day_coverage(connection, ids), accounts=ids),
        check_sanity(sanity_facts(connection, ids, today=TODAY)),
    ]
    for result in results:
        assert result.passed, result.description
        assert sorted(result.per_account()) == sorted(ids)


def test_reconciliation_catches_an_altered_and_a_deleted_row(
    connection: psycopg.Connection, accounts: dict[str, str], provider_totals: list[MonthTotal]
) -> None:
    ids = list(accounts.values())
    altered, deleted, untouched = (
        accounts["320000000001"],
        accounts["320000000002"],
        accounts["430000000001"],
    )
    # Half a cent is within tolerance...
    connection.execute(
        "UPDATE cost_data SET unblended_cost = unblended_cost + 0.005 WHERE ctid = "
        "(SELECT ctid FROM cost_data WHERE cloud_account_id = %s AND date = '2025-10-15' LIMIT 1)",
        (altered,),
    )
    assert reconcile(connection, ids, provider_totals).passed
    # ...two cents are not.
    connection.execute(
        "UPDATE cost_data SET unblended_cost = unblended_cost + 0.015 WHERE ctid = "
        "(SELECT ctid FROM cost_data WHERE cloud_account_id = %s AND date = '2025-10-15' LIMIT 1)",
        (altered,),
    )
    amount = connection.execute(
        "DELETE FROM cost_data WHERE ctid = (SELECT ctid FROM cost_data WHERE cloud_account_id = %s "
        "AND date = '2025-11-20' AND unblended_cost > 1 LIMIT 1) RETURNING unblended_cost",
        (deleted,),
    ).fetchone()[0]
    result = reconcile(connection, ids, provider_totals)
    findings = result.per_account()
    assert findings[untouched] == "ok"
    assert findings[altered].startswith("2025-10 USD: loaded ")
    assert findings[altered].endswith("(difference +0.0200000000)")
    assert findings[deleted].startswith("2025-11 USD: loaded ")
    assert findings[deleted].endswith(f"(difference {-amount:+f})")
    assert "2025-09" not in result.description


def test_completeness_catches_lost_days_and_accepts_zero_cost_days(
    connection: psycopg.Connection, accounts: dict[str, str]
) -> None:
    ids = list(accounts.values())
    damaged, zero, untouched = (
        accounts["320000000001"],
        accounts["320000000002"],
        accounts["430000000001"],
    )
    loaded = dict(
        connection.execute(
            "SELECT date, count(*) FROM cost_data WHERE cloud_account_id = %s "
            "AND date IN ('2025-10-15', '2025-10-16') GROUP BY date",
            (damaged,),
        ).fetchall()
    )
    on_15, on_16 = loaded[dt.date(2025, 10, 15)], loaded[dt.date(2025, 10, 16)]
    connection.execute(
        "DELETE FROM cost_data WHERE cloud_account_id = %s AND date = '2025-10-15'", (damaged,)
    )
    connection.execute(
        "DELETE FROM cost_data WHERE ctid = (SELECT ctid FROM cost_data "
        "WHERE cloud_account_id = %s AND date = '2025-10-16' LIMIT 1)",
        (damaged,),
    )
    # A later sync run whose window reaches past what was ever loaded.
    connection.execute(
        "INSERT INTO account_sync_runs (cloud_account_id, run_id, tenant_id, status, "
        "range_start, range_end) VALUES (%s, 'run-2', 'tenant-a', 'success', %s, %s)",
        (damaged, dt.date(2025, 11, 29), dt.date(2025, 12, 2)),
    )
    # A re-sync that finds a day without costs marks it as a zero-cost day.
    with connection.transaction():
        connection.execute(
            "DELETE FROM cost_data WHERE cloud_account_id = %s AND date = '2025-10-20'", (zero,)
        )
        record_loaded_days(
            connection,
            tenant_id="tenant-a",
            cloud_account_id=zero,
            start=dt.date(2025, 10, 20),
            end_inclusive=dt.date(2025, 10, 20),
            run_id="run-2",
        )
    assert connection.execute(
        "SELECT row_count FROM cost_data_days WHERE cloud_account_id = %s AND date = '2025-10-20'",
        (zero,),
    ).fetchone() == (0,)

    result = check_completeness(day_coverage(connection, ids), accounts=ids)
    assert result.per_account() == {
        damaged: "2 days missing: 2025-12-01..2025-12-02; 2 days changed since loaded: "
        f"2025-10-15 ({on_15} rows loaded, 0 now), 2025-10-16 ({on_16} rows loaded, "
        f"{on_16 - 1} now)",
        zero: "ok",
        untouched: "ok",
    }
    # Bounded to October, the check leaves December alone.
    october = check_completeness(
        day_coverage(connection, ids, start=dt.date(2025, 10, 1), end=dt.date(2025, 10, 31)),
        accounts=ids,
    )
    assert october.per_account()[damaged].startswith("2 days changed since loaded: 2025-10-15")
    # Without markers (purged), a day without rows inside a synced window is missing.
    delete_loaded_days(connection, tenant_id="tenant-a", cloud_account_id=damaged)
    result = check_completeness(day_coverage(connection, [damaged]))
    assert result.per_account() == {damaged: "3 days missing: 2025-10-15, 2025-12-01..2025-12-02"}


def test_freshness_catches_an_account_whose_recent_days_stay_estimated(
    connection: psycopg.Connection, accounts: dict[str, str], key_ring: KeyRing
) -> None:
    late, fresh = accounts["320000000002"], accounts["430000000001"]
    connection.execute(
        "UPDATE cost_data SET is_estimated = true WHERE cloud_account_id = %s "
        "AND date >= '2025-11-25'",
        (late,),
    )
    new = add_account(connection, key_ring, "tenant-b", "999999999999")
    old = add_account(connection, key_ring, "tenant-b", "888888888888")
    for account, registered in ((new, "2025-12-02"), (old, "2025-10-01")):
        connection.execute(
            "UPDATE cloud_accounts SET created_at = %s WHERE id = %s", (registered, account)
        )
    result = check_freshness(
        latest_final_days(connection, [late, fresh, new, old]),
        today=TODAY,
        max_lag_days={"aws": 6},
    )
    assert result.per_account() == {
        late: "latest final day 2025-11-24 is 10 days old (limit 6)",
        fresh: "ok",
        new: "ok",  # registered two days ago: its first sync may still be running
        old: "no final day loaded, 64 days after registration (limit 6)",
    }
    assert check_freshness(
        latest_final_days(connection, [fresh]), today=dt.date(2025, 12, 31)
    ).per_account() == {fresh: "latest final day 2025-11-30 is 31 days old (limit 6)"}


def test_sanity_catches_mixed_currencies_blank_keys_other_providers_and_future_days(
    connection: psycopg.Connection, accounts: dict[str, str]
) -> None:
    ids = list(accounts.values())
    mixed, odd, untouched = (
        accounts["320000000001"],
        accounts["320000000002"],
        accounts["430000000001"],
    )
    connection.execute(
        "UPDATE cost_data SET currency = 'EUR' WHERE cloud_account_id = %s "
        "AND date BETWEEN '2025-10-04' AND '2025-10-05'",
        (mixed,),
    )
    eur_rows = connection.execute(
        "SELECT count(*) FROM cost_data WHERE cloud_account_id = %s AND currency = 'EUR'", (mixed,)
    ).fetchone()[0]
    connection.execute(
        "UPDATE cost_data SET service = '  ' WHERE ctid = (SELECT ctid FROM cost_data "
        "WHERE cloud_account_id = %s AND date = '2025-10-07' LIMIT 1)",
        (odd,),
    )
    connection.execute(
        "UPDATE cost_data SET provider = 'azure' WHERE ctid = (SELECT ctid FROM cost_data "
        "WHERE cloud_account_id = %s AND date = '2025-10-08' LIMIT 1)",
        (odd,),
    )
    insert_cost(
        connection, "tenant-a", odd, TODAY + dt.timedelta(days=1), "AWS Lambda", "Request", "1"
    )
    result = check_sanity(sanity_facts(connection, ids, today=TODAY))
    findings = result.per_account()
    usd_rows = connection.execute(
        "SELECT count(*) FROM cost_data WHERE cloud_account_id = %s AND currency = 'USD'", (mixed,)
    ).fetchone()[0]
    assert findings == {
        mixed: f"2 currencies: USD ({usd_rows} rows, 2025-09-01..2025-11-30), "
        f"EUR ({eur_rows} rows, 2025-10-04..2025-10-05)",
        odd: "1 rows with a NULL or blank key or a malformed currency on 2025-10-07; "
        "1 rows under another provider; rows dated in the future: 2025-12-05",
        untouched: "ok",
    }


def test_day_markers_are_tenant_data_under_row_level_security(
    connection: psycopg.Connection, accounts: dict[str, str]
) -> None:
    with connection.transaction():
        connection.execute(f"SET LOCAL ROLE {REPORTING_ROLE}")
        assert connection.execute("SELECT count(*) FROM cost_data_days").fetchone() == (0,)
    with tenant_transaction(connection, "tenant-b"):
        connection.execute(f"SET LOCAL ROLE {REPORTING_ROLE}")
        seen = connection.execute(
            "SELECT DISTINCT tenant_id, cloud_account_id::text FROM cost_data_days"
        ).fetchall()
        assert seen == [("tenant-b", accounts["430000000001"])]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("DELETE FROM cost_data_days")
