"""Reading and writing ``source_watermarks``: each loaded day's version stamp, and the newest seen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class DayWatermark:
    """One account's usage day: the stamp of the rows loaded, and the newest stamp seen."""

    usage_date: dt.date
    loaded: dt.datetime | None
    observed: dt.datetime

    @property
    def moved(self) -> bool:
        """The provider has newer data for the day than ``cost_data`` holds."""
        return self.loaded is None or self.observed > self.loaded


def record_watermarks(
    connection: psycopg.Connection,
    *,
    tenant_id: str,
    cloud_account_id: str,
    loaded: Mapping[dt.date, dt.datetime],
    observed: Mapping[dt.date, dt.datetime],
    run_id: str | None,
) -> None:
    """Store the stamps of the days just loaded, and raise the observed ones (never lower)."""
    loaded_rows = [(tenant_id, cloud_account_id, day, mark, run_id) for day, mark in loaded.items()]
    observed_rows = [(tenant_id, cloud_account_id, day, mark) for day, mark in observed.items()]
    with connection.transaction(), connection.cursor() as cursor:
        if loaded_rows:
            cursor.executemany(
                """
                INSERT INTO source_watermarks AS w (tenant_id, cloud_account_id, usage_date,
                    loaded_watermark, observed_watermark, loaded_at, observed_at, run_id)
                VALUES (%s, %s, %s, %s, %s, now(), now(), %s)
                ON CONFLICT (tenant_id, cloud_account_id, usage_date) DO UPDATE SET
                    loaded_watermark = EXCLUDED.loaded_watermark,
                    observed_watermark = GREATEST(w.observed_watermark, EXCLUDED.loaded_watermark),
                    loaded_at = now(),
                    observed_at = now(),
                    run_id = EXCLUDED.run_id
                """,
                [(t, a, d, m, m, r) for t, a, d, m, r in loaded_rows],
            )
        if observed_rows:
            cursor.executemany(
                """
                INSERT INTO source_watermarks AS w (tenant_id, cloud_account_id, usage_date,
                    observed_watermark, observed_at)
                VALUES (%s, %s, %s, %s, now())
                ON CONFLICT (tenant_id, cloud_account_id, usage_date) DO UPDATE SET
                    observed_watermark = GREATEST(w.observed_watermark, EXCLUDED.observed_watermark),
                    observed_at = now()
                """,
                observed_rows,
            )


def account_watermarks(
    connection: psycopg.Connection, cloud_account_id: str
) -> dict[dt.date, DayWatermark]:
    """Every stored day of one account."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT usage_date, loaded_watermark, observed_watermark FROM source_watermarks "
            "WHERE cloud_account_id = %s ORDER BY usage_date",
            (cloud_account_id,),
        )
        return {row[0]: DayWatermark(row[0], row[1], row[2]) for row in cursor.fetchall()}


def newest_observed(
    connection: psycopg.Connection, cloud_account_ids: Sequence[str]
) -> dict[str, dt.datetime]:
    """Per account, the newest stamp ever seen: rows exported after it are news."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cloud_account_id::text, max(observed_watermark) FROM source_watermarks "
            "WHERE cloud_account_id::text = ANY(%s) GROUP BY cloud_account_id",
            (list(cloud_account_ids),),
        )
        return {row[0]: row[1] for row in cursor.fetchall()}


def moved_days_by_account(
    connection: psycopg.Connection,
) -> dict[str, dict[dt.date, DayWatermark]]:
    """Active accounts' days whose observed stamp is newer than the loaded one."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT w.cloud_account_id::text, w.usage_date, w.loaded_watermark,
                   w.observed_watermark
            FROM source_watermarks w
            JOIN cloud_accounts a ON a.id = w.cloud_account_id AND a.status = 'active'
            WHERE w.loaded_watermark IS NULL OR w.observed_watermark > w.loaded_watermark
            ORDER BY 1, 2
            """
        )
        moved: dict[str, dict[dt.date, DayWatermark]] = {}
        for account_id, day, loaded, observed in cursor.fetchall():
            moved.setdefault(account_id, {})[day] = DayWatermark(day, loaded, observed)
        return moved
