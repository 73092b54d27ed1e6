"""The idempotent window load against real Postgres."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal

import pandas as pd
import psycopg
import pytest

from finops_pipeline.constants import COST_COLUMNS
from finops_pipeline.db.cost_loader import count_window_rows, replace_cost_window
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.errors import DatabaseError

pytestmark = pytest.mark.integration

TENANT = "tenant-a"
ACCOUNT = str(uuid.UUID(int=1))
START = dt.date(2025, 1, 1)


def frame(
    days: int, services: int = 3, *, base: str = "1.5", start: dt.date = START
) -> pd.DataFrame:
    rows = []
    for d in range(days):
        for s in range(services):
            rows.append(
                (
                    TENANT,
                    ACCOUNT,
                    start + dt.timedelta(days=d),
                    "aws",
                    f"service-{s}",
                    "usage",
                    Decimal(base) + d,
                    Decimal(base),
                    Decimal(base),
                    Decimal(1),
                    "USD",
                    "Hrs",
                    False,
                )
            )
    return pd.DataFrame.from_records(rows, columns=list(COST_COLUMNS))


def load(connection: psycopg.Connection, rows: pd.DataFrame, days: int, run_id: str = "run"):
    return replace_cost_window(
        connection,
        rows,
        tenant_id=TENANT,
        cloud_account_id=ACCOUNT,
        provider="aws",
        start=START,
        end_inclusive=START + dt.timedelta(days=days - 1),
        run_id=run_id,
    )


def snapshot(connection: psycopg.Connection) -> list[tuple]:
    return connection.execute(
        "SELECT date, service, unblended_cost, is_estimated, run_id FROM cost_data ORDER BY 1, 2"
    ).fetchall()


def test_first_load_copies_and_second_identical_load_rewrites_nothing(connection) -> None:
    first = load(connection, frame(5), 5, run_id="r1")
    assert (first.inserted, first.restated, first.removed, first.unchanged) == (15, 0, 0, 0)
    before = snapshot(connection)
    second = load(connection, frame(5), 5, run_id="r2")
    assert (second.inserted, second.restated, second.removed, second.unchanged) == (0, 0, 0, 15)
    # Unchanged rows keep the run that wrote their values.
    assert snapshot(connection) == before


def test_estimated_becoming_final_counts_as_a_restatement(connection) -> None:
    estimated = frame(2)
    estimated["is_estimated"] = True
    load(connection, estimated, 2)
    stats = load(connection, frame(2), 2, run_id="final")
    assert stats.restated == 6
    assert {row[3] for row in snapshot(connection)} == {False}


def test_window_is_exact_and_neighbouring_days_and_accounts_are_untouched(connection) -> None:
    load(connection, frame(10), 10)
    other = frame(3)
    other["cloud_account_id"] = str(uuid.UUID(int=2))
    replace_cost_window(
        connection,
        other,
        tenant_id=TENANT,
        cloud_account_id=str(uuid.UUID(int=2)),
        provider="aws",
        start=START,
        end_inclusive=START + dt.timedelta(days=2),
        run_id="other",
    )
    # Re-load days 3..5 with only one service: the other services vanish from those days only.
    narrow = frame(3, services=1, start=START + dt.timedelta(days=2))
    stats = replace_cost_window(
        connection,
        narrow,
        tenant_id=TENANT,
        cloud_account_id=ACCOUNT,
        provider="aws",
        start=START + dt.timedelta(days=2),
        end_inclusive=START + dt.timedelta(days=4),
        run_id="narrow",
    )
    # service-0 is restated (its day offsets differ); services 1 and 2 vanish on 3 days.
    assert (stats.removed, stats.restated, stats.inserted) == (6, 3, 0)
    assert (
        count_window_rows(
            connection,
            tenant_id=TENANT,
            cloud_account_id=ACCOUNT,
            provider="aws",
            start=START,
            end_inclusive=START + dt.timedelta(days=9),
        )
        == 30 - 6
    )
    assert connection.execute(
        "SELECT count(*) FROM cost_data WHERE cloud_account_id = %s", (str(uuid.UUID(int=2)),)
    ).fetchone() == (9,)


def test_empty_result_clears_the_window(connection) -> None:
    load(connection, frame(2), 2)
    stats = load(connection, frame(0), 2)
    assert stats.removed == 6 and snapshot(connection) == []


def test_duplicate_keys_in_a_batch_fail_without_changing_the_table(connection) -> None:
    load(connection, frame(2), 2)
    before = snapshot(connection)
    duplicated = pd.concat([frame(2, base="9"), frame(2, base="9").head(1)], ignore_index=True)
    with pytest.raises(DatabaseError, match="old rows are intact"):
        load(connection, duplicated, 2)
    assert snapshot(connection) == before


def test_dead_connection_mid_load_leaves_old_rows(connection, database_url) -> None:
    load(connection, frame(3), 3)
    before = snapshot(connection)
    victim = psycopg.connect(to_libpq_url(database_url), autocommit=True)
    pid = victim.info.backend_pid
    # Hold the account's lock so the victim's load waits mid-transaction, then kill its backend.
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"finops.cost_data:{TENANT}:{ACCOUNT}",),
        )
        errors: list[Exception] = []

        def run() -> None:
            try:
                load(victim, frame(3, base="42"), 3, run_id="victim")
            except Exception as error:  # the assertion below checks the type
                errors.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        _wait_for_lock_wait(connection, pid)
        with psycopg.connect(to_libpq_url(database_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join(timeout=30)
    assert errors and isinstance(errors[0], DatabaseError)
    assert snapshot(connection) == before


def test_concurrent_loads_of_one_account_are_serialised(connection, database_url) -> None:
    other = psycopg.connect(to_libpq_url(database_url), autocommit=True)
    load(connection, frame(3), 3)
    results: dict[str, object] = {}
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"finops.cost_data:{TENANT}:{ACCOUNT}",),
        )
        thread = threading.Thread(
            target=lambda: results.setdefault("stats", load(other, frame(3, base="5"), 3))
        )
        thread.start()
        _wait_for_lock_wait(connection, other.info.backend_pid)
        assert "stats" not in results  # still waiting for the lock we hold
    thread.join(timeout=30)
    other.close()
    assert {row[2] for row in snapshot(connection) if row[0] == START} == {Decimal("5")}


def _wait_for_lock_wait(connection: psycopg.Connection, pid: int) -> None:
    with psycopg.connect(connection.info.dsn, autocommit=True) as watcher:
        for _ in range(200):
            row = watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.05)
    raise AssertionError("the second load never waited for the advisory lock")


def test_a_login_under_row_level_security_loads_and_restates(
    database_url: str, connection: psycopg.Connection
) -> None:
    """COPY FROM is refused where row-level security applies, as for every non-superuser."""
    role = f"finops_loader_{uuid.uuid4().hex[:10]}"
    connection.execute(f"CREATE ROLE {role} LOGIN")
    connection.execute(f"GRANT finops_pipeline TO {role}")
    try:
        conninfo = psycopg.conninfo.make_conninfo(to_libpq_url(database_url), user=role)
        with psycopg.connect(conninfo, autocommit=True) as app:
            assert app.execute("SELECT row_security_active('cost_data')").fetchone() == (True,)
            first = load(app, frame(4), 4, run_id="r1")
            restated = frame(4, base="2.5")
            second = load(app, restated, 4, run_id="r2")
    finally:
        connection.execute(f"DROP OWNED BY {role}")
        connection.execute(f"DROP ROLE {role}")
    assert (first.inserted, first.restated, first.removed, first.unchanged) == (12, 0, 0, 0)
    assert (second.inserted, second.restated, second.removed, second.unchanged) == (0, 12, 0, 0)
    assert snapshot(connection) == [
        (START + dt.timedelta(days=d), f"service-{s}", Decimal("2.5") + d, False, "r2")
        for d in range(4)
        for s in range(3)
    ]


def _dead_tuples(connection: psycopg.Connection) -> int:
    """Rows this backend deleted or updated in cost_data, not yet flushed to the statistics."""
    row = connection.execute(
        "SELECT n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables WHERE relname = 'cost_data'"
    ).fetchone()
    return int(row[0]) if row else 0


def test_unchanged_days_are_skipped_before_any_write(connection) -> None:
    load(connection, frame(5), 5, run_id="r1")
    restated = frame(5)
    last_day = restated["date"] == START + dt.timedelta(days=4)
    restated.loc[last_day & (restated["service"] == "service-1"), "amortized_cost"] = Decimal(
        "-0.000000000001"
    )
    with connection.transaction():
        before = _dead_tuples(connection)
        stats = load(connection, restated, 5, run_id="r2")
        deleted_or_updated = _dead_tuples(connection) - before
    assert (stats.days_skipped, stats.days_written) == (4, 1)
    assert (stats.inserted, stats.restated, stats.removed, stats.unchanged) == (0, 1, 0, 14)
    assert deleted_or_updated == 1  # only the restated row left a dead tuple
    # The other days still carry the run that wrote them.
    assert {row[4] for row in snapshot(connection) if row[0] < START + dt.timedelta(days=4)} == {
        "r1"
    }
    with connection.transaction():
        before = _dead_tuples(connection)
        again = load(connection, restated, 5, run_id="r3")
        assert _dead_tuples(connection) == before
    assert (again.days_skipped, again.days_written, again.unchanged) == (5, 0, 15)


def test_digest_markers_hold_each_days_count_and_empty_days(connection) -> None:
    rows = frame(3)
    rows = rows[rows["date"] != START + dt.timedelta(days=1)]
    load(connection, rows, 3)
    markers = connection.execute(
        "SELECT date, row_count, content_digest IS NOT NULL FROM cost_data_days ORDER BY date"
    ).fetchall()
    assert markers == [(START + dt.timedelta(days=d), n, True) for d, n in ((0, 3), (1, 0), (2, 3))]
    # The empty day gaining rows is a change, found by its digest.
    stats = load(connection, frame(3), 3)
    assert (stats.days_written, stats.inserted, stats.unchanged) == (1, 3, 6)


def test_rows_deleted_outside_the_loader_are_restored_despite_a_matching_digest(
    connection,
) -> None:
    load(connection, frame(3), 3)
    connection.execute("DELETE FROM cost_data WHERE date = %s", (START,))
    stats = load(connection, frame(3), 3)
    assert (stats.days_written, stats.inserted) == (1, 3)
    assert len(snapshot(connection)) == 9


def test_a_failed_load_keeps_the_old_digests(connection) -> None:
    load(connection, frame(2), 2)
    before = connection.execute("SELECT * FROM cost_data_days ORDER BY date").fetchall()
    duplicated = pd.concat([frame(2, base="9"), frame(2, base="9").head(1)], ignore_index=True)
    with pytest.raises(DatabaseError):
        load(connection, duplicated, 2)
    assert connection.execute("SELECT * FROM cost_data_days ORDER BY date").fetchall() == before
    # and an unchanged re-load still skips every day.
    assert load(connection, frame(2), 2).days_skipped == 2


def test_awkward_text_and_exact_amounts_survive_the_copy(connection) -> None:
    rows = frame(1, services=1)
    awkward = {
        "service": 'Quote " comma , back\\slash',
        "usage_type": "new\nline",
        "unblended_cost": Decimal("1E-12"),
        "amortized_cost": Decimal("-1234567890.123456789012345678"),
        "net_unblended_cost": "-0.000000000000000000000000001",  # text, as the parser keeps it
        "usage_quantity": Decimal("9999999999999999999999999999"),
        "usage_unit": None,
    }
    for column, value in awkward.items():
        rows[column] = rows[column].astype(object)
        rows.at[0, column] = value
    stats = load(connection, rows, 1)
    assert stats.inserted == 1
    stored = connection.execute(
        "SELECT service, usage_type, unblended_cost, amortized_cost, net_unblended_cost, "
        "usage_quantity, usage_unit FROM cost_data"
    ).fetchone()
    assert stored == (
        'Quote " comma , back\\slash',
        "new\nline",
        Decimal("1E-12"),
        Decimal("-1234567890.123456789012345678"),
        Decimal("-1E-27"),
        Decimal("9999999999999999999999999999"),
        None,
    )
    # The same rows again match their digest, with the amounts as Decimal or text alike.
    assert load(connection, rows, 1).days_skipped == 1
