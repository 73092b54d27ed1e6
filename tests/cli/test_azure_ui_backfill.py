"""A 13-month backfill of a sandbox Azure subscription launched as the UI's Materialize dialog
does (``launchPartitionBackfill``), run by the daemon: one range run, 26 requests."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from finops_pipeline.db.embedded import embedded_database_url, stop_embedded_server
from finops_pipeline.sync.ranges import DateRange, account_date_key
from finops_pipeline.sync.windows import first_of_month
from tests.cli.test_ui_embedded import WAIT_SECONDS, finops_home, ui_env
from tests.dagster_ui import free_port, observe_launch

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

__all__ = ["finops_home"]  # the fixture, imported to be used here

_REGISTER_AZURE_SUBSCRIPTIONS = textwrap.dedent(
    """
    import json
    from finops_pipeline.db.engine import create_finops_engine, psycopg_connection
    from finops_pipeline.cli.demo import ensure_demo_accounts, key_ring_for_demo
    from finops_pipeline.providers import provider_spec

    engine = create_finops_engine()
    with psycopg_connection(engine) as connection:
        ring, _ = key_ring_for_demo()
        accounts = ensure_demo_accounts(connection, ring, [provider_spec("azure")])
        print(json.dumps([a.account_id for a in accounts]))
    engine.dispose()
    """
)


def test_a_thirteen_month_ui_backfill_of_a_subscription_is_one_run_of_26_requests(
    finops_home: Path, tmp_path: Path
) -> None:
    env = ui_env(finops_home)
    registered = subprocess.run(
        [sys.executable, "-c", _REGISTER_AZURE_SUBSCRIPTIONS],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert registered.returncode == 0, registered.stderr
    account = json.loads(registered.stdout.strip().splitlines()[-1])[0]
    today = dt.datetime.now(dt.UTC).date()
    months = DateRange(first_of_month(today, 13), first_of_month(today) - dt.timedelta(days=1))
    partitions = [
        account_date_key(account, months.start + dt.timedelta(days=offset))
        for offset in range(months.days)
    ]

    finops = str(Path(sys.executable).parent / "finops")
    port = free_port()
    report = observe_launch(
        1,
        [finops, "ui", "--port", str(port)],
        env,
        tmp_path / "ui.log",
        port,
        ticks_per_sensor=1,
        backfill_partitions=partitions,
        timeout=WAIT_SECONDS,
    )
    print(f"\nfinops ui: {report.line()}")
    assert report.backfill_status == "COMPLETED_SUCCESS", report.line()
    assert [status for _run, status in report.backfill_runs] == ["SUCCESS"]  # one range run

    run_id = report.backfill_runs[0][0]
    with dg.DagsterInstance.from_config(str(finops_home / "dagster")) as instance:
        records = instance.fetch_materializations(dg.AssetKey("cost_data"), limit=1).records
        metadata = {
            key: value.value for key, value in records[0].asset_materialization.metadata.items()
        }
        assert records[0].run_id == run_id
    try:
        with psycopg.connect(embedded_database_url(finops_home)) as connection:
            rows, days = connection.execute(
                "SELECT count(*), count(DISTINCT date) FROM cost_data WHERE cloud_account_id = %s",
                (account,),
            ).fetchone()
    finally:
        stop_embedded_server(finops_home)
    assert days == months.days
    assert metadata["dagster/row_count"] == rows
    # 13 months, each as ActualCost, AmortizedCost and the reconciliation's ungrouped total.
    assert metadata["azure_requests"] == 39
    assert metadata["azure_qpu_consumed"] == 39.0
    print(
        f"UI backfill: {metadata['azure_requests']} requests (minimum 39), "
        f"{metadata['azure_qpu_consumed']} QPU, {rows} rows in {report.backfill_seconds:.0f} s"
    )
