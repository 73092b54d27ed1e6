"""An account's initial history is requested once, decided by the database, not the instance.

``dagster dev`` without ``DAGSTER_HOME`` starts a fresh temporary instance each time, so run
keys are forgotten on restart; ``finops sync`` adds an account's partition itself, so the
sensor never sees the account as new. Both are evaluated here through the real sensor on real
instances, with the runs it asks for executed for real.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from click.testing import CliRunner
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.cli.commands import main
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.initial_history import claim_initial_history
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import DateRange, split_partition_key
from finops_pipeline.sync.run_tags import ACCOUNT_TAG, SYNC_KIND_TAG
from finops_pipeline.sync.windows import SyncPolicy, initial_history_window
from tests.ce_responses import (
    StrictMotoCostExplorer,
    expected_request,
    paginate,
    queue_moto_pages,
)
from tests.orchestration.test_orchestration import (
    add_account,
    changes,
    days,
    history_requested,
    run_range,
    tick_accounts_sensor,
)

pytestmark = pytest.mark.integration

#: Current month plus the previous one keeps the windows (and the queued pages) small.
HISTORY_MONTHS = "1"


@pytest.fixture
def window(monkeypatch: pytest.MonkeyPatch) -> DateRange:
    monkeypatch.setenv("FINOPS_INITIAL_HISTORY_MONTHS", HISTORY_MONTHS)
    today = dt.datetime.now(dt.UTC).date()
    window = initial_history_window(today, SyncPolicy(initial_history_months=int(HISTORY_MONTHS)))
    assert window is not None and window.days >= 28
    return window


def requested(result: dg.SensorResult) -> dict[str, list[DateRange]]:
    """Each account's requested history ranges, checked to be one-account range runs."""
    ranges: dict[str, list[DateRange]] = {}
    for request in result.run_requests or []:
        first, start = split_partition_key(request.tags[ASSET_PARTITION_RANGE_START_TAG])
        last, end = split_partition_key(request.tags[ASSET_PARTITION_RANGE_END_TAG])
        assert first == last == request.tags[ACCOUNT_TAG]
        assert request.tags[SYNC_KIND_TAG] == "initial-history"
        assert request.run_key == f"initial-history:{first}:{start}:{end}"
        ranges.setdefault(first, []).append(DateRange(start, end))
    return ranges


def test_a_restart_on_a_fresh_instance_requests_no_history_again(
    database_url: str, key_ring: KeyRing, connection: psycopg.Connection, window: DateRange
) -> None:
    a = add_account(connection, key_ring, "tenant-a")
    b = add_account(connection, key_ring, "tenant-b")

    # The first `dagster dev`: a temporary instance.
    with dg.instance_for_test() as first_start:
        first = tick_accounts_sensor(first_start, database_url)
        assert changes(first) == (sorted([a, b]), [])
        assert requested(first) == {a: [window], b: [window]}
        assert history_requested(connection) == {a: True, b: True}
        # Re-evaluated on the same instance (a daemon retrying the tick): nothing new.
        assert not tick_accounts_sensor(first_start, database_url).run_requests

    # Restarted: a fresh instance that never saw a run key or a partition. The partitions come
    # back; the history, already requested, is not bought again. A new account gets its own.
    c = add_account(connection, key_ring, "tenant-c")
    with dg.instance_for_test() as second_start:
        second = tick_accounts_sensor(second_start, database_url)
        assert changes(second) == (sorted([a, b, c]), [])
        assert requested(second) == {c: [window]}
        with dg.instance_for_test() as third_start:
            assert not tick_accounts_sensor(third_start, database_url).run_requests


def test_accounts_first_loaded_by_finops_sync_get_the_rest_of_their_history(
    aws: None,
    moto_ce: StrictMotoCostExplorer,
    tmp_path: Path,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    window: DateRange,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    partial = add_account(connection, key_ring, "tenant-partial")
    complete = add_account(connection, key_ring, "tenant-complete")
    fresh = add_account(connection, key_ring, "tenant-fresh")
    home = tmp_path / "dagster"
    env = {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "DAGSTER_HOME": str(home),
    }
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    def finops_sync(account: str, loaded: DateRange) -> None:
        queue_moto_pages(paginate(days(loaded.start, loaded.days), per_page=100))
        result = CliRunner().invoke(
            main,
            ["sync", "--account", account, "--start", str(loaded.start), "--end", str(loaded.end)],
            env=env,
        )
        assert result.exit_code == 0, result.output

    # One account synced for five days in the middle of its history, one for all of it.
    middle = DateRange(window.start + dt.timedelta(days=9), window.start + dt.timedelta(days=13))
    finops_sync(partial, middle)
    finops_sync(complete, window)
    assert moto_ce.time_periods() == [
        (str(middle.start), str(middle.end + dt.timedelta(days=1)), None),
        (str(window.start), str(window.end + dt.timedelta(days=1)), None),
    ]

    # The sensor ticks on the instance `finops sync` recorded its runs in.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        partitions = instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
        assert sorted(partitions) == sorted([partial, complete])  # added by the syncs
        tick = tick_accounts_sensor(instance, database_url)
        assert changes(tick) == ([fresh], [])
        # The loaded days are not bought again: partial gets the days around its five, the
        # complete one nothing, the fresh one everything.
        before_middle = DateRange(window.start, middle.start - dt.timedelta(days=1))
        after_middle = DateRange(middle.end + dt.timedelta(days=1), window.end)
        assert requested(tick) == {partial: [before_middle, after_middle], fresh: [window]}
        assert history_requested(connection) == {partial: True, complete: True, fresh: True}

        # The requests are runnable range runs; afterwards partial holds its whole history,
        # each day once, and Cost Explorer was asked for exactly the missing days.
        moto_ce.requests.clear()
        for request in tick.run_requests or []:
            if request.tags[ACCOUNT_TAG] != partial:
                continue
            (gap,) = requested(dg.SensorResult(run_requests=[request]))[partial]
            queue_moto_pages(paginate(days(gap.start, gap.days), per_page=100))
            assert run_range(instance, database_url, encryption_key, dict(request.tags)).success
        assert moto_ce.requests == [
            expected_request(before_middle.start, before_middle.end),
            expected_request(after_middle.start, after_middle.end),
        ]
        assert not tick_accounts_sensor(instance, database_url).run_requests
    loaded = connection.execute(
        "SELECT count(DISTINCT date), count(*), min(date), max(date) FROM cost_data "
        "WHERE cloud_account_id = %s",
        (partial,),
    ).fetchone()
    assert loaded == (window.days, 2 * window.days, window.start, window.end)


def test_only_successful_outcomes_count_as_loaded_history(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    window = DateRange(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    account = add_account(connection, key_ring, "tenant-a")
    disabled = add_account(connection, key_ring, "tenant-b")
    connection.execute("UPDATE cloud_accounts SET status = 'disabled' WHERE id = %s", (disabled,))
    for run_id, status, start, end in [
        ("r1", "success", dt.date(2025, 12, 20), dt.date(2026, 1, 5)),  # reaches into the window
        ("r2", "failed", dt.date(2026, 1, 6), dt.date(2026, 1, 20)),  # failed: not loaded
        ("r3", "success", dt.date(2026, 1, 10), dt.date(2026, 1, 12)),
        ("r4", "success", dt.date(2026, 1, 11), dt.date(2026, 1, 15)),  # overlaps r3
        ("r5", "success", dt.date(2026, 1, 31), dt.date(2026, 1, 31)),
    ]:
        connection.execute(
            "INSERT INTO account_sync_runs (cloud_account_id, run_id, tenant_id, status, "
            "range_start, range_end) VALUES (%s, %s, 'tenant-a', %s, %s, %s)",
            (account, run_id, status, start, end),
        )
    claimed = claim_initial_history(connection, [account, disabled], window)
    assert claimed == {
        account: [
            DateRange(dt.date(2026, 1, 6), dt.date(2026, 1, 9)),
            DateRange(dt.date(2026, 1, 16), dt.date(2026, 1, 30)),
        ]
    }
    # Claimed once: a second evaluation (another instance, a retried tick) gets nothing.
    assert claim_initial_history(connection, [account, disabled], window) == {}
    assert history_requested(connection) == {account: True, disabled: False}
