"""The facts the data-quality checks need, read from Postgres, and the loader's day markers.

Every reader takes the accounts to check and reaches their rows through ``cloud_accounts``
(tenant id and account id), so each lookup is a range scan of ``cost_data``'s key index rather
than a scan of every tenant's rows. They run as the pipeline's role, which sees all tenants.
The pure checks are in ``finops_pipeline.quality``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import psycopg
from psycopg import sql

from finops_pipeline.providers.base import ProviderTotals
from finops_pipeline.quality.checks import (
    AccountSanityFacts,
    CurrencyUse,
    DayCoverage,
    LatestFinalDay,
    MonthTotal,
)

#: cost_data columns a reconciliation may compare, each with the provider metric it holds.
RECONCILED_METRICS = ("unblended_cost", "amortized_cost", "net_unblended_cost")

_EARLIEST, _LATEST = dt.date(1970, 1, 1), dt.date(9999, 12, 31)

_ACCOUNTS = """
    accounts AS (
        SELECT id, tenant_id, provider, created_at FROM cloud_accounts
        WHERE id = ANY(%(ids)s::uuid[])
    )
"""


def _ids(account_ids: Sequence[str]) -> list[str]:
    return [str(account_id) for account_id in account_ids]


def monthly_totals(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    metric: str = "unblended_cost",
) -> list[MonthTotal]:
    """Loaded sums per account, month and currency over ``start``..``end`` (inclusive).

    Months cut by the window are summed over their part inside it, as a provider total asked
    for the same window would be.
    """
    if metric not in RECONCILED_METRICS:
        raise ValueError(f"metric must be one of {RECONCILED_METRICS}, not {metric!r}")
    query = sql.SQL(
        "WITH "
        + _ACCOUNTS
        + """
        SELECT a.id::text, date_trunc('month', c.date::timestamp)::date, c.currency,
               sum(c.{metric})
        FROM accounts AS a
        JOIN cost_data AS c
            ON c.tenant_id = a.tenant_id AND c.cloud_account_id = a.id
           AND c.date BETWEEN %(start)s AND %(end)s
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        """
    ).format(metric=sql.Identifier(metric))
    rows = connection.execute(
        query, {"ids": _ids(account_ids), "start": start, "end": end}
    ).fetchall()
    return [MonthTotal(*row) for row in rows]


def latest_final_days(
    connection: psycopg.Connection, account_ids: Sequence[str]
) -> list[LatestFinalDay]:
    """Each account's newest day with rows no longer estimated, or None, and its provider."""
    rows = connection.execute(
        "WITH "
        + _ACCOUNTS
        + """
        SELECT a.id::text, a.provider, latest.day, (a.created_at AT TIME ZONE 'UTC')::date
        FROM accounts AS a
        LEFT JOIN LATERAL (
            SELECT max(c.date) AS day FROM cost_data AS c
            WHERE c.tenant_id = a.tenant_id AND c.cloud_account_id = a.id AND NOT c.is_estimated
        ) AS latest ON true
        ORDER BY 1
        """,
        {"ids": _ids(account_ids)},
    ).fetchall()
    return [LatestFinalDay(*row) for row in rows]


def day_coverage(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[DayCoverage]:
    """Every day of the accounts' synced windows (or with a marker), with markers and counts.

    Synced windows are the date ranges of successful runs in ``account_sync_runs``. Bounding
    the days with ``start``/``end`` keeps the check to the range a run touched.
    """
    rows = connection.execute(
        "WITH "
        + _ACCOUNTS
        + """,
        windows AS (
            SELECT DISTINCT r.cloud_account_id,
                   greatest(r.range_start, %(start)s) AS first_day,
                   least(r.range_end, %(end)s) AS last_day
            FROM account_sync_runs AS r
            JOIN accounts AS a ON a.id = r.cloud_account_id AND a.tenant_id = r.tenant_id
            WHERE r.status = 'success' AND r.range_start IS NOT NULL AND r.range_end IS NOT NULL
        ),
        days AS (
            SELECT w.cloud_account_id, d::date AS date
            FROM windows AS w
            CROSS JOIN LATERAL generate_series(w.first_day, w.last_day, interval '1 day') AS d
            UNION
            SELECT m.cloud_account_id, m.date
            FROM cost_data_days AS m
            JOIN accounts AS a ON a.id = m.cloud_account_id AND a.tenant_id = m.tenant_id
            WHERE m.date BETWEEN %(start)s AND %(end)s
        ),
        counts AS (
            SELECT c.cloud_account_id, c.date, count(*) AS n
            FROM accounts AS a
            JOIN cost_data AS c
                ON c.tenant_id = a.tenant_id AND c.cloud_account_id = a.id
               AND c.date BETWEEN %(start)s AND %(end)s
            GROUP BY 1, 2
        )
        SELECT d.cloud_account_id::text, d.date, m.row_count, COALESCE(n.n, 0)
        FROM days AS d
        LEFT JOIN cost_data_days AS m
            ON m.cloud_account_id = d.cloud_account_id AND m.date = d.date
        LEFT JOIN counts AS n ON n.cloud_account_id = d.cloud_account_id AND n.date = d.date
        ORDER BY 1, 2
        """,
        {"ids": _ids(account_ids), "start": start or _EARLIEST, "end": end or _LATEST},
    ).fetchall()
    return [DayCoverage(*row) for row in rows]


def sanity_facts(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    *,
    today: dt.date,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[AccountSanityFacts]:
    """Per account: currencies used, rows with blank keys, rows of another provider, future days.

    The key columns are NOT NULL in the schema; the NULL tests stay so that the check keeps
    meaning if a migration ever relaxes that.
    """
    params = {
        "ids": _ids(account_ids),
        "today": today,
        "start": start or _EARLIEST,
        "end": end or _LATEST,
    }
    rows_of_accounts = """
        FROM accounts AS a
        JOIN cost_data AS c
            ON c.tenant_id = a.tenant_id AND c.cloud_account_id = a.id
           AND c.date BETWEEN %(start)s AND %(end)s
    """
    currencies: dict[str, list[CurrencyUse]] = defaultdict(list)
    for account, currency, rows, first_day, last_day in connection.execute(
        "WITH "
        + _ACCOUNTS
        + """
        SELECT a.id::text, c.currency, count(*), min(c.date), max(c.date)
        """
        + rows_of_accounts
        + " GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    ).fetchall():
        currencies[account].append(CurrencyUse(currency, rows, first_day, last_day))
    problems = {
        row[0]: row[1:]
        for row in connection.execute(
            "WITH "
            + _ACCOUNTS
            + """,
            flagged AS (
                SELECT a.id::text AS account, c.date, c.provider <> a.provider AS wrong_provider,
                       (c.service IS NULL OR btrim(c.service) = ''
                        OR c.usage_type IS NULL OR btrim(c.usage_type) = ''
                        OR c.provider IS NULL OR btrim(c.provider) = ''
                        OR c.date IS NULL
                        OR c.currency IS NULL OR c.currency !~ '^[A-Z]{3}$') AS blank_key
                """
            + rows_of_accounts
            + """
            )
            SELECT account,
                   count(*) FILTER (WHERE blank_key),
                   COALESCE(array_agg(DISTINCT date) FILTER (WHERE blank_key), '{}'),
                   count(*) FILTER (WHERE wrong_provider),
                   COALESCE(array_agg(DISTINCT date) FILTER (WHERE date > %(today)s), '{}')
            FROM flagged
            GROUP BY account
            """,
            params,
        ).fetchall()
    }
    facts = []
    for account in sorted(set(_ids(account_ids))):
        blank_rows, blank_days, wrong_provider, future_days = problems.get(account, (0, [], 0, []))
        facts.append(
            AccountSanityFacts(
                cloud_account_id=account,
                currencies=tuple(currencies.get(account, ())),
                blank_key_days=tuple(blank_days),
                blank_key_rows=blank_rows,
                wrong_provider_rows=wrong_provider,
                future_days=tuple(future_days),
            )
        )
    return facts


def record_loaded_days(
    connection: psycopg.Connection,
    *,
    tenant_id: str,
    cloud_account_id: str,
    start: dt.date,
    end_inclusive: dt.date,
    run_id: str | None,
) -> int:
    """Mark every day of a just-replaced window with the rows it now holds; returns the days
    whose marker was written (new, or a changed row count).

    Call it inside the window replace's transaction, so a marker always describes the rows
    that load left. A day the provider returned nothing for gets ``row_count = 0``: the
    explicit marker of a zero-cost day.
    """
    cursor = connection.execute(
        """
        INSERT INTO cost_data_days (tenant_id, cloud_account_id, date, row_count, loaded_at, run_id)
        SELECT %(tenant)s, %(account)s::uuid, d::date, count(c.date), now(), %(run)s
        FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS d
        LEFT JOIN cost_data AS c
            ON c.tenant_id = %(tenant)s AND c.cloud_account_id = %(account)s::uuid
           AND c.date = d::date
        GROUP BY d
        ON CONFLICT (tenant_id, cloud_account_id, date) DO UPDATE
            SET row_count = EXCLUDED.row_count, loaded_at = EXCLUDED.loaded_at,
                run_id = EXCLUDED.run_id
            -- A day the load left as it was keeps its marker: rewriting it would leave a dead
            -- tuple per day on every unchanged re-load. Its content digest is the loader's.
            WHERE cost_data_days.row_count IS DISTINCT FROM EXCLUDED.row_count
        """,
        {
            "tenant": tenant_id,
            "account": str(cloud_account_id),
            "start": start,
            "end": end_inclusive,
            "run": run_id,
        },
    )
    return cursor.rowcount


def delete_loaded_days(
    connection: psycopg.Connection, *, tenant_id: str, cloud_account_id: str
) -> int:
    """Forget an account's day markers (with ``accounts remove --purge``); returns the count."""
    cursor = connection.execute(
        "DELETE FROM cost_data_days WHERE tenant_id = %s AND cloud_account_id = %s::uuid",
        (tenant_id, str(cloud_account_id)),
    )
    return cursor.rowcount


def record_provider_totals(
    connection: psycopg.Connection,
    *,
    tenant_id: str,
    cloud_account_id: str,
    provider: str,
    start: dt.date,
    end_inclusive: dt.date,
    totals: ProviderTotals,
    run_id: str | None,
) -> int:
    """Replace the window's stored provider totals with ``totals``; returns the rows stored.

    Call it inside the window replace's transaction, so the totals always belong to the rows
    they are compared with.
    """
    params = {
        "tenant": tenant_id,
        "account": str(cloud_account_id),
        "start": start,
        "end": end_inclusive,
    }
    connection.execute(
        """
        DELETE FROM cost_provider_totals
        WHERE tenant_id = %(tenant)s AND cloud_account_id = %(account)s::uuid
          AND date BETWEEN %(start)s AND %(end)s
        """,
        params,
    )
    records = [
        (
            tenant_id,
            str(cloud_account_id),
            provider,
            day,
            currency,
            amount,
            day in totals.estimated_days,
            run_id,
        )
        for (day, currency), amount in sorted(totals.by_day.items())
        if start <= day <= end_inclusive
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO cost_provider_totals (tenant_id, cloud_account_id, provider, date,
                currency, unblended_cost, is_estimated, run_id)
            VALUES (%s, %s::uuid, %s, %s, %s, %s, %s, %s)
            """,
            records,
        )
    return len(records)


def reconciliation_totals(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> tuple[list[MonthTotal], list[MonthTotal]]:
    """Loaded and provider sums per account, month and currency, over the days the provider's
    totals were stored for (so days loaded before reconciliation was on are not compared).

    Returns:
        (loaded, provider) month totals, ready for ``check_reconciliation``.
    """
    params = {"ids": _ids(account_ids), "start": start or _EARLIEST, "end": end or _LATEST}
    provider_rows = connection.execute(
        "WITH "
        + _ACCOUNTS
        + """
        SELECT a.id::text, date_trunc('month', t.date::timestamp)::date, t.currency,
               sum(t.unblended_cost)
        FROM accounts AS a
        JOIN cost_provider_totals AS t
            ON t.tenant_id = a.tenant_id AND t.cloud_account_id = a.id
           AND t.date BETWEEN %(start)s AND %(end)s
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        """,
        params,
    ).fetchall()
    loaded_rows = connection.execute(
        "WITH "
        + _ACCOUNTS
        + """,
        reconciled_days AS (
            SELECT DISTINCT t.tenant_id, t.cloud_account_id, t.date
            FROM accounts AS a
            JOIN cost_provider_totals AS t
                ON t.tenant_id = a.tenant_id AND t.cloud_account_id = a.id
               AND t.date BETWEEN %(start)s AND %(end)s
        )
        SELECT d.cloud_account_id::text, date_trunc('month', c.date::timestamp)::date,
               c.currency, sum(c.unblended_cost)
        FROM reconciled_days AS d
        JOIN cost_data AS c
            ON c.tenant_id = d.tenant_id AND c.cloud_account_id = d.cloud_account_id
           AND c.date = d.date
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        """,
        params,
    ).fetchall()
    return [MonthTotal(*row) for row in loaded_rows], [MonthTotal(*row) for row in provider_rows]


def delete_provider_totals(
    connection: psycopg.Connection, *, tenant_id: str, cloud_account_id: str
) -> int:
    """Forget an account's stored provider totals (with ``accounts remove --purge``)."""
    cursor = connection.execute(
        "DELETE FROM cost_provider_totals WHERE tenant_id = %s AND cloud_account_id = %s::uuid",
        (tenant_id, str(cloud_account_id)),
    )
    return cursor.rowcount


def checked_accounts(connection: psycopg.Connection) -> list[str]:
    """The accounts a check run alone looks at: every active account, oldest first."""
    rows = connection.execute(
        "SELECT id::text FROM cloud_accounts WHERE status = 'active' ORDER BY created_at, id"
    ).fetchall()
    return [row[0] for row in rows]


def account_labels(connection: psycopg.Connection, account_ids: Sequence[str]) -> dict[str, str]:
    """Account id -> "name (provider number)", for check results a person reads."""
    rows = connection.execute(
        "SELECT id::text, name, provider, provider_account_id FROM cloud_accounts "
        "WHERE id = ANY(%s::uuid[])",
        (_ids(account_ids),),
    ).fetchall()
    return {account: f"{name} ({provider} {number})" for account, name, provider, number in rows}


def accounts_with_provider_totals(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> set[str]:
    """The accounts that have provider totals stored for some day of ``start``..``end``."""
    rows = connection.execute(
        "WITH "
        + _ACCOUNTS
        + """
        SELECT a.id::text FROM accounts AS a
        WHERE EXISTS (
            SELECT 1 FROM cost_provider_totals AS t
            WHERE t.tenant_id = a.tenant_id AND t.cloud_account_id = a.id
              AND t.date BETWEEN %(start)s AND %(end)s
        )
        """,
        {"ids": _ids(account_ids), "start": start or _EARLIEST, "end": end or _LATEST},
    ).fetchall()
    return {row[0] for row in rows}
