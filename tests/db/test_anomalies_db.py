"""cost_anomalies on real Postgres: a re-run updates in place, removes what no longer departs."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pandas as pd
import psycopg
import pytest

from finops_pipeline.db.anomalies import (
    DETECTOR_SOURCE,
    AccountScope,
    replace_anomalies,
    tenant_anomalies,
)
from finops_pipeline.db.tenants import REPORTING_ROLE, tenant_transaction

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 6, 10)
ACCOUNT = str(uuid.UUID(int=1))
OTHER = str(uuid.UUID(int=2))


def found(*points: tuple[str, dt.date, float, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "service": service,
                "currency": "USD",
                "date": day,
                "expected": expected,
                "actual": actual,
                "impact": actual - expected,
                "score": (actual - expected) / 5.0,
                "direction": "spike" if actual >= expected else "drop",
                "confirmed": False,
            }
            for service, day, expected, actual in points
        ]
    )


def rows(connection: psycopg.Connection) -> list[tuple]:
    return connection.execute(
        "SELECT cloud_account_id::text, service, date, expected, actual, impact, direction, "
        "run_id FROM cost_anomalies ORDER BY 1, 2, 3"
    ).fetchall()


def test_restated_days_update_their_anomalies_rather_than_duplicating(
    connection: psycopg.Connection,
) -> None:
    scope = AccountScope(ACCOUNT, "tenant-a")
    window = {"start": DAY - dt.timedelta(days=30), "end": DAY}
    first = replace_anomalies(
        connection,
        scope,
        found(("EC2", DAY, 100.0, 400.0), ("S3", DAY - dt.timedelta(days=3), 50.0, 10.0)),
        run_id="r1",
        **window,
    )
    assert (first.inserted, first.updated, first.removed) == (2, 0, 0)
    # Another account's anomaly on the same day is outside the replacement.
    replace_anomalies(
        connection, AccountScope(OTHER, "tenant-b"), found(("EC2", DAY, 1.0, 90.0)), **window
    )

    # DAY was restated upwards; the S3 drop no longer departs from its baseline.
    second = replace_anomalies(
        connection, scope, found(("EC2", DAY, 100.0, 450.5)), run_id="r2", **window
    )
    assert (second.inserted, second.updated, second.unchanged, second.removed) == (0, 1, 0, 1)
    assert rows(connection) == [
        (
            ACCOUNT,
            "EC2",
            DAY,
            Decimal("100.0000"),
            Decimal("450.5000"),
            Decimal("350.5000"),
            "spike",
            "r2",
        ),
        (
            OTHER,
            "EC2",
            DAY,
            Decimal("1.0000"),
            Decimal("90.0000"),
            Decimal("89.0000"),
            "spike",
            None,
        ),
    ]

    # The same result again changes nothing.
    third = replace_anomalies(
        connection, scope, found(("EC2", DAY, 100.0, 450.5)), run_id="r3", **window
    )
    assert (third.inserted, third.updated, third.unchanged, third.removed) == (0, 0, 1, 0)
    assert rows(connection)[0][-1] == "r2"

    listed = tenant_anomalies(connection, "tenant-a", DAY - dt.timedelta(days=7), DAY)
    assert [(a.service, a.source, a.direction) for a in listed] == [
        ("EC2", DETECTOR_SOURCE, "spike")
    ]


def test_days_outside_the_judged_span_are_refused(connection: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="outside the judged"):
        replace_anomalies(
            connection,
            AccountScope(ACCOUNT, "tenant-a"),
            found(("EC2", DAY, 1.0, 90.0)),
            start=DAY - dt.timedelta(days=5),
            end=DAY - dt.timedelta(days=1),
        )
    assert rows(connection) == []


def test_the_reporting_role_reads_only_its_tenant(connection: psycopg.Connection) -> None:
    window = {"start": DAY, "end": DAY}
    replace_anomalies(
        connection, AccountScope(ACCOUNT, "tenant-a"), found(("EC2", DAY, 1, 90)), **window
    )
    replace_anomalies(
        connection, AccountScope(OTHER, "tenant-b"), found(("EC2", DAY, 1, 90)), **window
    )
    with tenant_transaction(connection, "tenant-a"):
        connection.execute(f"SET LOCAL ROLE {REPORTING_ROLE}")
        assert connection.execute("SELECT DISTINCT tenant_id FROM cost_anomalies").fetchall() == [
            ("tenant-a",)
        ]
