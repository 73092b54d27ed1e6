"""Time the account sensor and the daily schedule at 10k accounts.

Usage:
    .venv/bin/python benchmarks/account_sensor_tick.py [--accounts 10000] [--server URL]

It creates a scratch database on the server (default: FINOPS_TEST_DATABASE_URL, else the
embedded server), migrates it, inserts the accounts, evaluates the sensor and the schedule on
a temporary Dagster instance, prints the timings and drops the database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid

import dagster as dg
import psycopg
import sqlalchemy as sa

from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.embedded import embedded_database_url
from finops_pipeline.db.migrate import upgrade_database
from finops_pipeline.db.urls import to_libpq_url, to_psycopg_url, with_database
from finops_pipeline.resources import PostgresResource
from finops_pipeline.schedules import daily_cost_sync
from finops_pipeline.sensors import cloud_accounts_sensor


def insert_accounts(url: str, count: int, tenant: str = "tenant") -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    copy_sql = (
        "COPY cloud_accounts (id, tenant_id, name, provider, provider_account_id, "
        "credential_kind, credentials_encrypted) FROM STDIN"
    )
    with (
        psycopg.connect(to_libpq_url(url), autocommit=True) as connection,
        connection.cursor().copy(copy_sql) as copy,
    ):
        # The sensor never decrypts, so a placeholder blob is enough here.
        for index, account_id in enumerate(ids):
            row = (account_id, f"{tenant}-{index}", "bench", "aws", f"{index:012d}", "keys", b"x")
            copy.write_row(row)
    return ids


def tick(instance: dg.DagsterInstance, url: str) -> tuple[float, dg.SensorResult]:
    with dg.build_sensor_context(
        instance=instance, resources={"postgres": PostgresResource(database_url=url)}
    ) as context:
        started = time.perf_counter()
        result = cloud_accounts_sensor(context)
        return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--server", default=os.environ.get("FINOPS_TEST_DATABASE_URL"))
    args = parser.parse_args()
    server = args.server or embedded_database_url()
    name = f"finops_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    try:
        engine = sa.create_engine(to_psycopg_url(url), poolclass=sa.pool.NullPool)
        upgrade_database(engine)
        engine.dispose()
        ids = insert_accounts(url, args.accounts)
        with dg.instance_for_test() as instance:
            seconds, result = tick(instance, url)
            added = sum(len(r.partition_keys) for r in result.dynamic_partitions_requests or [])
            print(
                f"first tick, {args.accounts} new accounts: {seconds:.3f} s "
                f"({added} partitions added, {len(result.run_requests or [])} initial backfills)"
            )
            started = time.perf_counter()
            instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
            print(f"  daemon applying the add request: {time.perf_counter() - started:.3f} s")
            seconds, _ = tick(instance, url)
            print(f"steady tick, {args.accounts} accounts, no change: {seconds:.3f} s")
            with psycopg.connect(to_libpq_url(url), autocommit=True) as connection:
                connection.execute(
                    "UPDATE cloud_accounts SET status = 'disabled' WHERE id = ANY(%s)", (ids[:10],)
                )
            insert_accounts(url, 10, tenant="late")
            seconds, result = tick(instance, url)
            print(f"tick with 10 added and 10 disabled: {seconds:.3f} s")
            with dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=dt.datetime.now(dt.UTC),
                resources={"postgres": PostgresResource(database_url=url)},
            ) as context:
                started = time.perf_counter()
                requests = list(daily_cost_sync(context))
                print(
                    f"daily schedule tick: {time.perf_counter() - started:.3f} s "
                    f"({len(requests)} run requests)"
                )
    finally:
        with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
