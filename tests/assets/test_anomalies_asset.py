"""cost_anomalies through real Dagster materialisation over sandbox costs in real Postgres."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
import pytest

from finops_pipeline.assets import cost_data
from finops_pipeline.assets.anomalies import cost_anomalies
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.anomalies import DETECTOR_SOURCE
from finops_pipeline.providers.aws.sandbox.generator import SandboxGenerator
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import account_date_key
from tests.cost_rows import add_account, load_sandbox

pytestmark = pytest.mark.integration

START, END = dt.date(2025, 8, 1), dt.date(2025, 11, 30)
LOOKBACK = (END - START).days + 1
# Sandbox accounts whose injected spikes fall inside the window: an EC2 spike (25-28 Oct)
# and a Neptune one (16-20 Oct); and one with no spike in the window at all.
EC2_SPIKY, NEPTUNE_SPIKY, QUIET = "700000000002", "700000000021", "700000000100"
RUN_CONFIG = {"ops": {"cost_anomalies": {"config": {"lookback_days": LOOKBACK}}}}


@pytest.fixture
def accounts(connection: psycopg.Connection, key_ring: KeyRing) -> dict[str, str]:
    ids = {}
    for number, tenant in (
        (EC2_SPIKY, "tenant-a"),
        (NEPTUNE_SPIKY, "tenant-a"),
        (QUIET, "tenant-b"),
    ):
        ids[number] = add_account(connection, key_ring, tenant, number)
        load_sandbox(connection, tenant, ids[number], number, START, END)
    return ids


def materialize(database_url: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [cost_anomalies],
        instance=instance,
        resources={"postgres": PostgresResource(database_url=database_url)},
        run_config=RUN_CONFIG,
    )


def stored(connection: psycopg.Connection) -> list[tuple]:
    return connection.execute(
        "SELECT cloud_account_id::text, service, date, direction, actual, expected, source "
        "FROM cost_anomalies ORDER BY 1, 2, 3"
    ).fetchall()


def spike_days(number: str) -> set[tuple[str, dt.date]]:
    return {
        (spike.service, spike.start + dt.timedelta(days=offset))
        for spike in SandboxGenerator().injected_anomalies(number)
        for offset in range(spike.days)
        if START <= spike.start <= END
    }


def test_injected_spikes_are_found_and_normal_weeks_stay_quiet(
    database_url: str,
    connection: psycopg.Connection,
    accounts: dict[str, str],
    instance: dg.DagsterInstance,
) -> None:
    result = materialize(database_url, instance)
    assert result.success

    rows = stored(connection)
    by_account: dict[str, set[tuple[str, dt.date]]] = {}
    for account_id, service, day, direction, *_rest, source in rows:
        assert (direction, source) == ("spike", DETECTOR_SOURCE)
        by_account.setdefault(account_id, set()).add((service, day))
    # Every injected spike day is flagged, and nothing else is.
    assert by_account[accounts[EC2_SPIKY]] == spike_days(EC2_SPIKY)
    assert by_account[accounts[NEPTUNE_SPIKY]] == spike_days(NEPTUNE_SPIKY)
    assert len(spike_days(EC2_SPIKY)) == 4 and len(spike_days(NEPTUNE_SPIKY)) == 5
    assert accounts[QUIET] not in by_account

    metadata = result.asset_materializations_for_node("cost_anomalies")[0].metadata
    assert metadata["dagster/row_count"].value == 9
    assert metadata["anomalies_new"].value == 9
    assert metadata["spikes"].value == 9
    largest = metadata["largest"].value.records  # type: ignore[attr-defined]
    assert largest[0].data["service"] == "Amazon Elastic Compute Cloud - Compute"

    # Re-running over unchanged costs changes nothing and duplicates nothing.
    again = materialize(database_url, instance)
    again_metadata = again.asset_materializations_for_node("cost_anomalies")[0].metadata
    assert again_metadata["anomalies_unchanged"].value == 9
    assert again_metadata["anomalies_new"].value == 0
    assert stored(connection) == rows


def test_restated_days_update_their_anomalies(
    database_url: str,
    connection: psycopg.Connection,
    accounts: dict[str, str],
    instance: dg.DagsterInstance,
) -> None:
    materialize(database_url, instance)
    ec2 = "Amazon Elastic Compute Cloud - Compute"
    account = accounts[EC2_SPIKY]
    first_day, last_day = dt.date(2025, 10, 25), dt.date(2025, 10, 28)

    def anomaly(day: dt.date) -> tuple | None:
        return connection.execute(
            "SELECT actual, expected FROM cost_anomalies "
            "WHERE cloud_account_id = %s AND service = %s AND date = %s",
            (account, ec2, day),
        ).fetchone()

    before = anomaly(first_day)
    assert before is not None
    # The provider restates the spike's first day upwards, and its last day back to normal:
    # the usage type that spiked is charged at a fraction of what it was.
    connection.execute(
        "UPDATE cost_data SET unblended_cost = unblended_cost * 1.5 "
        "WHERE cloud_account_id = %s AND service = %s AND date = %s AND usage_type = %s",
        (account, ec2, first_day, "BoxUsage:m5.large"),
    )
    spike = next(s for s in SandboxGenerator().injected_anomalies(EC2_SPIKY) if s.service == ec2)
    connection.execute(
        "UPDATE cost_data SET unblended_cost = unblended_cost / %s "
        "WHERE cloud_account_id = %s AND service = %s AND date = %s AND usage_type = %s",
        (spike.multiplier, account, ec2, last_day, spike.usage_type),
    )
    total = connection.execute("SELECT count(*) FROM cost_anomalies").fetchone()

    result = materialize(database_url, instance)
    metadata = result.asset_materializations_for_node("cost_anomalies")[0].metadata
    after = anomaly(first_day)
    assert after is not None and after[0] > before[0]  # updated in place
    assert anomaly(last_day) is None  # no longer departs: removed
    assert metadata["anomalies_updated"].value >= 1
    assert metadata["anomalies_removed"].value == 1
    assert connection.execute("SELECT count(*) FROM cost_anomalies").fetchone() == (
        total[0] - 1,  # type: ignore[index]
    )


def test_cost_anomalies_is_requested_after_cost_data_changes(
    database_url: str, accounts: dict[str, str], instance: dg.DagsterInstance
) -> None:
    """Declarative automation, evaluated tick by tick as the daemon does, on the real defs."""
    from finops_pipeline.definitions import defs

    account = accounts[QUIET]
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [account])
    # The first evaluation only records the state it starts from.
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert tick.total_requested == 0

    def cost_data_run(day: dt.date) -> None:
        # A cost_data run loads (or restates) a day: its materialisation event.
        instance.report_runless_asset_event(
            dg.AssetMaterialization(cost_data.key, partition=account_date_key(account, day))
        )

    cost_data_run(END)
    # Requested although nearly every cost_data partition is missing (eager() would wait).
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(cost_anomalies.key) == {None}
    materialize(database_url, instance)

    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(cost_anomalies.key) == set()

    cost_data_run(END - dt.timedelta(days=1))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(cost_anomalies.key) == {None}
