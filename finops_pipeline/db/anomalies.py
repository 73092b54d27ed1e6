"""Reading the costs the anomaly detector judges, and storing ``cost_anomalies``.

A detector run judges a span of days per account and replaces what it found in that span:
points still flagged are updated in place (a restated day moves their actual, expected and
score; ``detected_at`` stays), new ones are inserted, and ones no longer flagged are removed,
all in one transaction per account. Rows of other sources and other days are left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import psycopg

from finops_pipeline.db.tenants import tenant_transaction
from finops_pipeline.insights.anomalies import DETECTOR_SOURCE


@dataclass(frozen=True)
class AccountScope:
    """One account a detector run reads: its id and tenant."""

    account_id: str
    tenant_id: str


def detector_accounts(
    connection: psycopg.Connection, start: dt.date, end: dt.date
) -> list[AccountScope]:
    """Every account with costs from ``start`` to ``end``, and its tenant (removed accounts'
    kept history included)."""
    rows = connection.execute(
        "SELECT DISTINCT cloud_account_id::text, tenant_id FROM cost_data "
        "WHERE date BETWEEN %s AND %s ORDER BY tenant_id, cloud_account_id::text",
        (start, end),
    ).fetchall()
    return [AccountScope(account_id, tenant_id) for account_id, tenant_id in rows]


def service_day_costs(
    connection: psycopg.Connection, account_ids: Sequence[str], start: dt.date, end: dt.date
) -> pd.DataFrame:
    """Each account's gross cost per service, currency and day from ``start`` to ``end``.

    Gross: the non-negative rows summed (credits and refunds are billing events, not changes
    in what runs; see :mod:`finops_pipeline.insights.anomalies`). A service-day with only
    negative rows is left out, and the account counts as loaded that day through its other
    rows. Columns: ``cloud_account_id``, ``tenant_id``, ``service``, ``currency``, ``date``,
    ``unblended_cost`` (``Decimal``).
    """
    rows = connection.execute(
        """
        SELECT cloud_account_id::text, tenant_id, service, currency, date,
               sum(unblended_cost) FILTER (WHERE unblended_cost >= 0)
        FROM cost_data
        WHERE cloud_account_id::text = ANY(%s) AND date BETWEEN %s AND %s
        GROUP BY cloud_account_id, tenant_id, service, currency, date
        HAVING count(*) FILTER (WHERE unblended_cost >= 0) > 0
        ORDER BY 1, 3, 4, 5
        """,
        (list(account_ids), start, end),
    ).fetchall()
    return pd.DataFrame(
        rows,
        columns=["cloud_account_id", "tenant_id", "service", "currency", "date", "unblended_cost"],
    )


def latest_cost_day(connection: psycopg.Connection) -> dt.date | None:
    """The newest day ``cost_data`` holds for any account."""
    row = connection.execute("SELECT max(date) FROM cost_data").fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class AnomalyWriteStats:
    """What one replacement did to the stored anomalies."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def __add__(self, other: AnomalyWriteStats) -> AnomalyWriteStats:
        return AnomalyWriteStats(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.removed + other.removed,
        )


def replace_anomalies(
    connection: psycopg.Connection,
    scope: AccountScope,
    anomalies: pd.DataFrame,
    *,
    start: dt.date,
    end: dt.date,
    source: str = DETECTOR_SOURCE,
    run_id: str | None = None,
) -> AnomalyWriteStats:
    """Make ``source``'s stored anomalies of the account from ``start`` to ``end`` these.

    Args:
        connection: An autocommit connection of the pipeline role.
        scope: The account and its tenant.
        anomalies: The detector's result for the account (``service``, ``currency``, ``date``
            and the value columns), every row within ``start``..``end``.
        start: First day the run judged.
        end: Last day the run judged, inclusive.
        source: Whose anomalies these are.
        run_id: The Dagster run writing them.
    """
    records = [
        (
            str(row.service),
            str(row.currency),
            row.date,
            _decimal(row.expected),
            _decimal(row.actual),
            float(row.score),
            _decimal(row.impact),
            str(row.direction),
            bool(row.confirmed),
        )
        for row in anomalies.itertuples(index=False)
    ]
    outside = [record for record in records if not start <= record[2] <= end]
    if outside:
        raise ValueError(f"anomaly on {outside[0][2]} is outside the judged {start}..{end}")
    key = (scope.tenant_id, scope.account_id, source)
    with connection.transaction():
        # Two runs judging one account at once (a manual run beside the automated one) write
        # one after the other.
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"cost_anomalies:{scope.account_id}:{source}",),
        )
        connection.execute(
            """
            CREATE TEMP TABLE anomalies_staging (
                service text, currency text, date date, expected numeric, actual numeric,
                score double precision, impact numeric, direction text, confirmed boolean
            ) ON COMMIT DROP
            """
        )
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY anomalies_staging (service, currency, date, expected, actual, score, "
                "impact, direction, confirmed) FROM STDIN"
            ) as copy:
                for record in records:
                    copy.write_row(record)
            cursor.execute(
                """
                DELETE FROM cost_anomalies AS a
                WHERE a.tenant_id = %s AND a.cloud_account_id = %s AND a.source = %s
                  AND a.date BETWEEN %s AND %s
                  AND NOT EXISTS (
                      SELECT 1 FROM anomalies_staging AS s
                      WHERE s.service = a.service AND s.currency = a.currency
                        AND s.date = a.date)
                """,
                (*key, start, end),
            )
            removed = cursor.rowcount
            cursor.execute(
                """
                SELECT count(*) FROM anomalies_staging AS s JOIN cost_anomalies AS a
                    ON a.tenant_id = %s AND a.cloud_account_id = %s AND a.source = %s
                   AND a.service = s.service AND a.currency = s.currency AND a.date = s.date
                WHERE (a.expected, a.actual, a.score, a.impact, a.direction, a.confirmed)
                      IS NOT DISTINCT FROM
                      (s.expected, s.actual, s.score, s.impact, s.direction, s.confirmed)
                """,
                key,
            )
            unchanged_row = cursor.fetchone()
            unchanged = int(unchanged_row[0]) if unchanged_row else 0
            # xmax = 0 marks a row this statement inserted rather than updated.
            cursor.execute(
                """
                INSERT INTO cost_anomalies AS a (tenant_id, cloud_account_id, source, service,
                    currency, date, expected, actual, score, impact, direction, confirmed,
                    run_id)
                SELECT %s, %s, %s, service, currency, date, expected, actual, score, impact,
                       direction, confirmed, %s
                FROM anomalies_staging
                ON CONFLICT (tenant_id, cloud_account_id, source, service, currency, date)
                DO UPDATE SET
                    expected = EXCLUDED.expected, actual = EXCLUDED.actual,
                    score = EXCLUDED.score, impact = EXCLUDED.impact,
                    direction = EXCLUDED.direction, confirmed = EXCLUDED.confirmed,
                    updated_at = now(), run_id = EXCLUDED.run_id
                WHERE (a.expected, a.actual, a.score, a.impact, a.direction, a.confirmed)
                      IS DISTINCT FROM
                      (EXCLUDED.expected, EXCLUDED.actual, EXCLUDED.score, EXCLUDED.impact,
                       EXCLUDED.direction, EXCLUDED.confirmed)
                RETURNING (xmax = 0)
                """,
                (*key, run_id),
            )
            written = [bool(row[0]) for row in cursor.fetchall()]
    inserted = sum(written)
    return AnomalyWriteStats(
        inserted=inserted,
        updated=len(written) - inserted,
        unchanged=unchanged,
        removed=removed,
    )


def _decimal(value: float) -> Decimal:
    # Cents are what a person reads; the detector works in floats.
    return Decimal(f"{float(value):.4f}")


@dataclass(frozen=True)
class StoredAnomaly:
    """One row of ``cost_anomalies``."""

    account_id: str
    source: str
    service: str
    currency: str
    date: dt.date
    expected: Decimal
    actual: Decimal
    score: float | None
    impact: Decimal
    direction: str
    confirmed: bool


def tenant_anomalies(
    connection: psycopg.Connection, tenant_id: str, start: dt.date, end: dt.date
) -> list[StoredAnomaly]:
    """``tenant_id``'s anomalies from ``start`` to ``end``, every source, by date."""
    with tenant_transaction(connection, tenant_id):
        rows = connection.execute(
            """
            SELECT cloud_account_id::text, source, service, currency, date, expected, actual,
                   score, impact, direction, confirmed
            FROM cost_anomalies
            WHERE tenant_id = %s AND date BETWEEN %s AND %s
            ORDER BY date, abs(impact) DESC, service, cloud_account_id
            """,
            (tenant_id, start, end),
        ).fetchall()
    return [StoredAnomaly(*row) for row in rows]


def tenant_service_days(
    connection: psycopg.Connection, tenant_id: str, start: dt.date, end: dt.date
) -> pd.DataFrame:
    """``tenant_id``'s gross daily cost per account and service, for its chart and movers."""
    with tenant_transaction(connection, tenant_id):
        rows = connection.execute(
            """
            SELECT cloud_account_id::text, service, currency, date,
                   sum(unblended_cost) FILTER (WHERE unblended_cost >= 0)
            FROM cost_data
            WHERE tenant_id = %s AND date BETWEEN %s AND %s
            GROUP BY cloud_account_id, service, currency, date
            HAVING count(*) FILTER (WHERE unblended_cost >= 0) > 0
            ORDER BY 1, 2, 3, 4
            """,
            (tenant_id, start, end),
        ).fetchall()
    frame = pd.DataFrame(
        rows, columns=["cloud_account_id", "service", "currency", "date", "unblended_cost"]
    )
    frame["cost"] = frame["unblended_cost"].astype(float)
    return frame


def tenant_latest_day(connection: psycopg.Connection, tenant_id: str) -> dt.date | None:
    """The newest day ``cost_data`` holds for ``tenant_id``."""
    with tenant_transaction(connection, tenant_id):
        row = connection.execute(
            "SELECT max(date) FROM cost_data WHERE tenant_id = %s", (tenant_id,)
        ).fetchone()
    return row[0] if row else None
