"""Sensors and the schedule, evaluated on a real instance backed by real cost_data runs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from moto.core.exceptions import JsonRESTError

from finops_pipeline.assets import cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.urls import with_database
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.schedules import daily_cost_sync
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sensors import (
    cloud_accounts_sensor,
    last_sync_failure_sensor,
    last_sync_success_sensor,
)
from finops_pipeline.sync.ranges import DateRange, account_date_key, split_partition_key
from finops_pipeline.sync.run_tags import ACCOUNT_TAG, run_account_ranges
from finops_pipeline.sync.windows import first_of_month
from tests.ce_responses import (
    TWO_SERVICES,
    StrictMotoCostExplorer,
    day_result,
    expected_request,
    group,
    paginate,
    queue_moto_pages,
    reset_moto_ce,
)
from tests.dates import RECENT_START, TODAY

pytestmark = pytest.mark.integration

START = RECENT_START
SERVICES = TWO_SERVICES
DENIED_KEY = "AKIADENIEDKEY0000002"


def add_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    tenant: str,
    access_key: str = "AKIAEXAMPLEKEY000001",
) -> str:
    return register_account(
        connection,
        ring,
        tenant_id=tenant,
        name=f"{tenant} prod",
        provider="aws",
        provider_account_id="123456789012",
        credentials=AwsAccessKeyCredentials(
            access_key_id=access_key, secret_access_key=Secret("s3cr3t-value-xyz")
        ),
    )


def resources(database_url: str, encryption_key: str) -> dict[str, Any]:
    return {
        "postgres": PostgresResource(database_url=database_url),
        "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
        "gcp_billing_export": GcpBillingExportResource(),
        "aws_cost_explorer": AwsCostExplorerResource(),
        "azure_cost_management": AzureCostManagementResource(),
    }


def days(start: dt.date, count: int, *, estimated: bool = False, base: str = "1.5") -> list:
    return [
        day_result(
            start + dt.timedelta(days=offset),
            [group(s, u, f"{base}{offset}") for s, u in SERVICES],
            estimated=estimated,
        )
        for offset in range(count)
    ]


def run_range(
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    tags: dict[str, str],
) -> dg.ExecuteInProcessResult:
    """A real cost_data run with the tags a sensor, a schedule or a backfill gives it."""
    return dg.materialize(
        [cost_data],
        instance=instance,
        resources=resources(database_url, encryption_key),
        tags=tags,
        raise_on_error=False,
    )


def range_tags(first: str, last: str, start: dt.date, end: dt.date) -> dict[str, str]:
    return {
        ASSET_PARTITION_RANGE_START_TAG: account_date_key(first, start),
        ASSET_PARTITION_RANGE_END_TAG: account_date_key(last, end),
    }


def tick_accounts_sensor(instance: dg.DagsterInstance, database_url: str) -> dg.SensorResult:
    """Evaluate the sensor, then apply its partition requests as the daemon does."""
    with dg.build_sensor_context(
        instance=instance, resources={"postgres": PostgresResource(database_url=database_url)}
    ) as context:
        result = cloud_accounts_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def changes(result: dg.SensorResult) -> tuple[list[str], list[str]]:
    added: list[str] = []
    deleted: list[str] = []
    for request in result.dynamic_partitions_requests or []:
        target = added if isinstance(request, dg.AddDynamicPartitionsRequest) else deleted
        target.extend(request.partition_keys)
    return added, deleted


def record_sync(
    instance: dg.DagsterInstance, database_url: str, result: dg.ExecuteInProcessResult
) -> None:
    """Evaluate the matching last-sync sensor on the run, as the daemon would."""
    postgres = PostgresResource(database_url=database_url)
    event = result.get_run_success_event() if result.success else result.get_run_failure_event()
    with dg.build_run_status_sensor_context(
        sensor_name="last_sync_success_sensor" if result.success else "last_sync_failure_sensor",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"postgres": postgres},
    ) as context:
        if result.success:
            last_sync_success_sensor(context)
        else:
            last_sync_failure_sensor(context.for_run_failure())


def last_sync(connection: psycopg.Connection, account_id: str) -> dict[str, Any]:
    row = connection.execute(
        "SELECT last_sync_at, last_sync_status, last_sync_error, last_sync_rows, "
        "last_sync_run_id, last_sync_attempt_at, last_sync_range_start, last_sync_range_end, "
        "xmin::text FROM cloud_accounts WHERE id = %s",
        (account_id,),
    ).fetchone()
    names = ("at", "status", "error", "rows", "run_id", "attempt_at", "start", "end", "xmin")
    return dict(zip(names, row, strict=True))


def history_requested(connection: psycopg.Connection) -> dict[str, bool]:
    """Whether each account's initial history is recorded as requested."""
    rows = connection.execute(
        "SELECT id::text, initial_history_requested_at IS NOT NULL FROM cloud_accounts"
    ).fetchall()
    return dict(rows)


def run_end(instance: dg.DagsterInstance, run_id: str) -> dt.datetime:
    record = instance.get_run_record_by_id(run_id)
    assert record is not None and record.end_time is not None
    return dt.datetime.fromtimestamp(record.end_time, tz=dt.UTC)


# --- the account sensor -------------------------------------------------------------------


def test_accounts_added_removed_and_re_added_with_one_initial_backfill_each(
    aws: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINOPS_INITIAL_HISTORY_MONTHS", "0")
    a = add_account(connection, key_ring, "tenant-a")
    b = add_account(connection, key_ring, "tenant-b")
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    history = DateRange(min(first_of_month(today), yesterday), yesterday)

    first = tick_accounts_sensor(instance, database_url)
    assert changes(first) == (sorted([a, b]), [])
    requests = {request.tags[ACCOUNT_TAG]: request for request in first.run_requests or []}
    assert set(requests) == {a, b}
    for account, request in requests.items():
        assert request.run_key == f"initial-history:{account}:{history.start}:{history.end}"
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == account_date_key(
            account, history.start
        )
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == account_date_key(account, history.end)
    assert instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME) == sorted([a, b])
    assert history_requested(connection) == {a: True, b: True}

    # The initial backfill is a real one-account range run over the whole history.
    queue_moto_pages(paginate(days(history.start, history.days), per_page=100))
    result = run_range(instance, database_url, encryption_key, dict(requests[a].tags))
    assert result.success
    assert connection.execute(
        "SELECT count(*), count(DISTINCT cloud_account_id) FROM cost_data"
    ).fetchone() == (2 * history.days, 1)
    record_sync(instance, database_url, result)
    assert last_sync(connection, a)["status"] == "success"
    assert (last_sync(connection, a)["start"], last_sync(connection, a)["end"]) == (
        history.start,
        history.end,
    )

    # Nothing changed: nothing to add, nothing to request.
    quiet = tick_accounts_sensor(instance, database_url)
    assert changes(quiet) == ([], [])
    assert not quiet.run_requests

    # b is disabled, c is new: c is added with its backfill, b removed.
    connection.execute("UPDATE cloud_accounts SET status = 'disabled' WHERE id = %s", (b,))
    c = add_account(connection, key_ring, "tenant-c")
    third = tick_accounts_sensor(instance, database_url)
    assert changes(third) == ([c], [b])
    assert [request.tags[ACCOUNT_TAG] for request in third.run_requests or []] == [c]
    assert set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)) == {a, c}

    # A deleted row goes the same way.
    connection.execute("DELETE FROM cloud_accounts WHERE id = %s", (c,))
    assert changes(tick_accounts_sensor(instance, database_url)) == ([], [c])

    # b comes back: re-added, and not backfilled twice: the database says its history was
    # requested, whatever the instance remembers.
    connection.execute("UPDATE cloud_accounts SET status = 'active' WHERE id = %s", (b,))
    again = tick_accounts_sensor(instance, database_url)
    assert changes(again) == ([b], [])
    assert not again.run_requests


def test_initial_backfill_can_be_turned_off(
    instance: dg.DagsterInstance,
    database_url: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINOPS_INITIAL_HISTORY_MONTHS", "off")
    a = add_account(connection, key_ring, "tenant-a")
    result = tick_accounts_sensor(instance, database_url)
    assert changes(result) == ([a], [])
    assert not result.run_requests
    # Not marked: turning the initial history on later requests it.
    assert history_requested(connection) == {a: False}


# --- last sync -------------------------------------------------------------------------------


def test_last_sync_for_a_range_run_over_several_accounts_is_idempotent(
    aws: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    ids = [add_account(connection, key_ring, f"tenant-{n}") for n in "abc"]
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
    queue_moto_pages(paginate(days(START, 5), per_page=10))
    end = START + dt.timedelta(days=4)
    # A backfill-style range run: only the range tags, no per-account tag.
    result = run_range(
        instance, database_url, encryption_key, range_tags(ids[0], ids[2], START, end)
    )
    assert result.success
    assert run_account_ranges(instance, result.dagster_run) == {
        account: DateRange(START, end) for account in ids
    }

    record_sync(instance, database_url, result)
    finished = run_end(instance, result.run_id)
    for account in ids:
        state = last_sync(connection, account)
        assert state["status"] == "success"
        assert state["at"] == state["attempt_at"] == finished
        assert (state["rows"], state["run_id"], state["error"]) == (10, result.run_id, None)
        assert (state["start"], state["end"]) == (START, end)

    # The sensor processing the same run again changes nothing, not even the row version.
    before = [last_sync(connection, account) for account in ids]
    record_sync(instance, database_url, result)
    assert [last_sync(connection, account) for account in ids] == before


def deny_access_key(monkeypatch: pytest.MonkeyPatch, access_key: str) -> None:
    """Cost Explorer answers AccessDenied to one principal, as AWS does without ce:Get*."""
    from moto.ce.responses import CostExplorerResponse

    original = CostExplorerResponse.get_cost_and_usage

    def get_cost_and_usage(self: CostExplorerResponse) -> str:
        if access_key in self.headers.get("Authorization", ""):
            # An HTTP 400 with Cost Explorer's JSON error body, parsed by botocore.
            raise JsonRESTError("AccessDeniedException", "not authorized")
        return original(self)

    monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", get_cost_and_usage)


def test_failure_recorded_per_account_without_losing_the_last_success(
    aws: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = add_account(connection, key_ring, "tenant-a")
    b = add_account(connection, key_ring, "tenant-b", access_key=DENIED_KEY)
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [a, b])
    queue_moto_pages(paginate(days(START, 3), per_page=10))
    first = run_range(
        instance, database_url, encryption_key, range_tags(a, b, START, START + dt.timedelta(2))
    )
    assert first.success
    record_sync(instance, database_url, first)
    b_success = last_sync(connection, b)

    # b loses its Cost Explorer permission; a still loads, the run fails for b.
    deny_access_key(monkeypatch, DENIED_KEY)
    reset_moto_ce()
    queue_moto_pages(paginate(days(START, 3, base="2."), per_page=10))
    second = run_range(
        instance, database_url, encryption_key, range_tags(a, b, START, START + dt.timedelta(2))
    )
    assert not second.success
    # Permanent: Failure(allow_retries=False) stops the retry policy.
    assert not [e for e in second.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]

    record_sync(instance, database_url, second)
    finished = run_end(instance, second.run_id)
    state_a, state_b = last_sync(connection, a), last_sync(connection, b)
    assert (state_a["status"], state_a["run_id"], state_a["at"]) == (
        "success",
        second.run_id,
        finished,
    )
    assert (state_b["status"], state_b["run_id"], state_b["attempt_at"]) == (
        "failed",
        second.run_id,
        finished,
    )
    assert state_b["error"] == (
        "ProviderAccessDeniedError: AWS denied GetCostAndUsage (AccessDeniedException). Grant "
        "ce:GetCostAndUsage to the account's credentials or role, then run `finops accounts "
        "validate`."
    )
    # The last success of b is kept: its time, rows and range.
    for column in ("at", "rows", "start", "end"):
        assert state_b[column] == b_success[column]

    # A failure sensor that fires twice for the run changes nothing.
    before = (last_sync(connection, a), last_sync(connection, b))
    record_sync(instance, database_url, second)
    assert (last_sync(connection, a), last_sync(connection, b)) == before

    # An older run processed late does not overwrite the newer state.
    record_sync(instance, database_url, first)
    assert (last_sync(connection, a), last_sync(connection, b)) == before


def test_transient_failure_retries_only_the_failed_account(
    aws: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.ce.responses import CostExplorerResponse

    a = add_account(connection, key_ring, "tenant-a")
    b = add_account(connection, key_ring, "tenant-b", access_key=DENIED_KEY)
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [a, b])
    queue_moto_pages(paginate(days(START, 3), per_page=2))
    original = CostExplorerResponse.get_cost_and_usage
    calls: list[str] = []
    failed: list[bool] = []

    def flaky(self: CostExplorerResponse) -> str:
        # b's second page keeps failing on the first attempt (every restart of its paging):
        # a transient error.
        denied = DENIED_KEY in self.headers.get("Authorization", "")
        calls.append("b" if denied else "a")
        if denied and "NextPageToken" in json.loads(self.body) and len(failed) < 4:
            failed.append(True)
            raise JsonRESTError("InvalidNextTokenException", "bad token")
        return original(self)

    monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", flaky)
    result = run_range(
        instance, database_url, encryption_key, range_tags(a, b, START, START + dt.timedelta(2))
    )
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    # a's two pages were fetched once: the retry re-read b only. b: four attempts of page 1
    # and a failing page 2, then both pages on the retry.
    assert calls.count("a") == 2
    assert calls.count("b") == 4 * 2 + 2
    record_sync(instance, database_url, result)
    assert {last_sync(connection, x)["status"] for x in (a, b)} == {"success"}


# --- the daily schedule -------------------------------------------------------------------


def evaluate_schedule(
    instance: dg.DagsterInstance, database_url: str, when: dt.datetime
) -> list[dg.RunRequest]:
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources={"postgres": PostgresResource(database_url=database_url)},
    ) as context:
        result = daily_cost_sync(context)
    if isinstance(result, dg.SkipReason):
        return []
    return list(result)


def windows(instance: dg.DagsterInstance, requests: list[dg.RunRequest]) -> dict[str, DateRange]:
    """Each account's window, from one-account runs and from grouped ones alike."""
    order = instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
    planned = {}
    for request in requests:
        first, start = split_partition_key(request.tags[ASSET_PARTITION_RANGE_START_TAG])
        last, end = split_partition_key(request.tags[ASSET_PARTITION_RANGE_END_TAG])
        if first == last:
            assert request.tags[ACCOUNT_TAG] == first
        else:  # a group: every account between its ends, and no per-account tag
            assert ACCOUNT_TAG not in request.tags
        for account in order[order.index(first) : order.index(last) + 1]:
            assert account not in planned  # in one run only
            planned[account] = DateRange(start, end)
    return planned


def six_am(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 6, tzinfo=dt.UTC)


def test_schedule_one_run_per_account_stretched_after_a_gap(
    aws: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    a = add_account(connection, key_ring, "tenant-a")
    b = add_account(connection, key_ring, "tenant-b")
    pending = add_account(connection, key_ring, "tenant-c")  # the sensor has not added it yet
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [a, b])
    queue_moto_pages(paginate(days(START, 1), per_page=10))
    synced = run_range(instance, database_url, encryption_key, range_tags(a, a, START, START))
    assert synced.success
    record_sync(instance, database_url, synced)
    last_day = last_sync(connection, a)["at"].date()

    # The next morning: both accounts get the plain 3-day window, in one shared run.
    next_day = last_day + dt.timedelta(days=1)
    requests = evaluate_schedule(instance, database_url, six_am(next_day))
    plain = DateRange(next_day - dt.timedelta(days=3), next_day - dt.timedelta(days=1))
    assert windows(instance, requests) == {a: plain, b: plain}
    assert pending not in windows(instance, requests)
    assert len({request.run_key for request in requests}) == 1
    # One run per account when the deployment asks for it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINOPS_SCHEDULE_ACCOUNTS_PER_RUN", "1")
        singles = evaluate_schedule(instance, database_url, six_am(next_day))
    assert windows(instance, singles) == {a: plain, b: plain} and len(singles) == 2

    # Fifteen days later (the daemon was down): a stretches back to where it stopped; b, never
    # synced, has its initial backfill for history and gets the plain window.
    later = last_day + dt.timedelta(days=15)
    stretched = windows(instance, evaluate_schedule(instance, database_url, six_am(later)))
    assert stretched[a] == DateRange(last_day - dt.timedelta(days=2), later - dt.timedelta(1))
    assert stretched[b] == DateRange(later - dt.timedelta(days=3), later - dt.timedelta(1))

    # A scheduled request is a runnable range run, for both accounts.
    request = requests[0]
    queue_moto_pages(paginate(days(plain.start, plain.days), per_page=10))
    grouped = run_range(instance, database_url, encryption_key, dict(request.tags))
    assert grouped.success
    loaded = connection.execute(
        "SELECT DISTINCT cloud_account_id::text FROM cost_data WHERE date >= %s", (plain.start,)
    ).fetchall()
    assert {row[0] for row in loaded} == {a, b}


def test_schedule_re_reads_the_previous_month_until_it_is_final(
    aws: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    a = add_account(connection, key_ring, "tenant-a")
    b = add_account(connection, key_ring, "tenant-b")
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [a, b])
    # A complete month of the history ("March") and the month after it ("April").
    march = first_of_month(TODAY, 3)
    april = first_of_month(TODAY, 2)
    march_end = april - dt.timedelta(days=1)
    march_29, march_30 = march_end - dt.timedelta(days=2), march_end - dt.timedelta(days=1)
    # a's last March days are still estimated; b has no March rows at all.
    tail = [*days(march_29, 1), *days(march_30, 2, estimated=True)]
    queue_moto_pages(paginate(tail, per_page=10))
    assert run_range(
        instance, database_url, encryption_key, range_tags(a, a, march_29, march_end)
    ).success

    def starts(day: dt.date) -> dict[str, dt.date]:
        planned = windows(instance, evaluate_schedule(instance, database_url, six_am(day)))
        return {account: planned[account].start for account in (a, b)}

    def april_day(day: int) -> dt.date:
        return april + dt.timedelta(days=day - 1)

    assert starts(april_day(2)) == {a: march, b: march_30}
    assert starts(april_day(5)) == {a: march, b: april_day(2)}
    # Past the re-pull days, or with the month final, only the restatement window is read.
    assert starts(april_day(6)) == {a: april_day(3), b: april_day(3)}
    reset_moto_ce()
    queue_moto_pages(paginate(days(march_29, 3), per_page=10))
    assert run_range(
        instance, database_url, encryption_key, range_tags(a, a, march_29, march_end)
    ).success
    assert starts(april_day(2)) == {a: march_30, b: march_30}


def test_run_failing_before_any_account_is_recorded_from_its_partition_tags(
    aws: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    a = add_account(connection, key_ring, "tenant-a")
    b = add_account(connection, key_ring, "tenant-b")
    gone = add_account(connection, key_ring, "tenant-gone")
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [a, b, gone])
    # The account is deleted after its partition was added (before the sensor's next tick).
    connection.execute("DELETE FROM cloud_accounts WHERE id = %s", (gone,))
    result = run_range(
        instance, database_url, encryption_key, range_tags(a, gone, START, START + dt.timedelta(1))
    )
    assert not result.success
    # AccountNotFoundError is permanent: no step retry.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert connection.execute("SELECT count(*) FROM account_sync_runs").fetchone() == (0,)

    record_sync(instance, database_url, result)
    for account in (a, b):
        state = last_sync(connection, account)
        assert (state["status"], state["run_id"], state["at"]) == ("failed", result.run_id, None)
        assert "AccountNotFoundError" in state["error"]


def test_single_partition_runs_update_last_sync_on_success_and_failure(
    aws: None,
    moto_ce: StrictMotoCostExplorer,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    """A partition materialised alone (from the UI) carries dagster/partition, no range tags."""
    a = add_account(connection, key_ring, "tenant-a")
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [a])
    key = dg.MultiPartitionKey({"account": a, "date": START.isoformat()})
    queue_moto_pages(paginate(days(START, 1), per_page=10))
    result = dg.materialize(
        [cost_data],
        instance=instance,
        resources=resources(database_url, encryption_key),
        partition_key=key,
        raise_on_error=False,
    )
    assert result.success
    assert result.dagster_run.tags["dagster/partition"] == f"{a}|{START}"
    assert ASSET_PARTITION_RANGE_START_TAG not in result.dagster_run.tags
    assert run_account_ranges(instance, result.dagster_run) == {a: DateRange(START, START)}
    assert moto_ce.requests == [expected_request(START, START)]
    record_sync(instance, database_url, result)
    state = last_sync(connection, a)
    assert (state["status"], state["run_id"], state["rows"], state["error"]) == (
        "success",
        result.run_id,
        2,
        None,
    )
    assert (state["start"], state["end"]) == (START, START)
    assert state["at"] == state["attempt_at"] == run_end(instance, result.run_id)

    # The next single-partition run dies before it records any outcome (its database cannot
    # be reached): the failure comes from the partition tag, and the last success is kept.
    broken = {
        **resources(database_url, encryption_key),
        "postgres": PostgresResource(database_url=with_database(database_url, "finops_gone")),
    }
    failed = dg.materialize(
        [cost_data], instance=instance, resources=broken, partition_key=key, raise_on_error=False
    )
    assert not failed.success
    record_sync(instance, database_url, failed)
    after = last_sync(connection, a)
    assert (after["status"], after["run_id"], after["attempt_at"]) == (
        "failed",
        failed.run_id,
        run_end(instance, failed.run_id),
    )
    # Resources failed to start, so there is no step failure: the run's own message is kept.
    assert after["error"] == failed.get_run_failure_event().message
    for column in ("at", "rows", "start", "end"):
        assert after[column] == state[column]
