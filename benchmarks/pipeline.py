"""Paid requests and end-to-end time, through the real asset against the sandbox."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from typing import Any

import dagster as dg

from benchmarks.common import Table
from finops_pipeline.cli.demo import QUIET_RUN_CONFIG
from finops_pipeline.cli.runner import sync_accounts
from finops_pipeline.constants import PROVIDER_AWS
from finops_pipeline.db.accounts import get_account, register_account
from finops_pipeline.db.engine import create_finops_engine, psycopg_connection
from finops_pipeline.partitions import PARTITIONS_START_DATE
from finops_pipeline.providers.aws.constants import CE_PRICE_PER_REQUEST_USD
from finops_pipeline.providers.aws.request import build_daily_cost_request
from finops_pipeline.providers.aws.sandbox import (
    SANDBOX_ENDPOINT_URL,
    CostExplorerSandbox,
    SandboxGenerator,
    SandboxSettings,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing, generate_key
from finops_pipeline.sync.ranges import DateRange

Progress = Callable[[str], Any]


def _window(days: int) -> tuple[dt.date, dt.date]:
    """The last ``days`` days up to yesterday, cut after the first day that has partitions.

    Cost Explorer keeps daily data for the current month plus 13, so "396 days" is 13 months
    and a few days early in a month, and fewer on the 1st. The day before the window stays
    available to the single-day baselines.
    """
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = PARTITIONS_START_DATE + dt.timedelta(days=1)
    return max(end - dt.timedelta(days=days - 1), first), end


def _register(url: str, key: str, numbers: list[str]) -> list[str]:
    ring = KeyRing.from_strings(key)
    engine = create_finops_engine(url)
    try:
        with psycopg_connection(engine) as connection:
            return [
                register_account(
                    connection,
                    ring,
                    tenant_id=f"bench-{index % 3}",
                    name=f"bench {number}",
                    provider=PROVIDER_AWS,
                    provider_account_id=number,
                    credentials=sandbox_credentials(number),
                    endpoint_url=SANDBOX_ENDPOINT_URL,
                )
                for index, number in enumerate(numbers)
            ]
    finally:
        engine.dispose()


def _resources(url: str, key: str) -> dict[str, dg.ConfigurableResource]:
    return {
        "postgres": PostgresResource(database_url=url),
        "credential_decryptor": CredentialDecryptor(encryption_key=key),
        "aws_cost_explorer": AwsCostExplorerResource(),
        "azure_cost_management": AzureCostManagementResource(),
        "gcp_billing_export": GcpBillingExportResource(),
    }


def run_requests(url: str, days: int, progress: Progress = print) -> Table:
    """One account's backfill: one range run against one request sequence per day."""
    key = generate_key()
    number = "320000000001"
    [account_id] = _register(url, key, [number])
    start, end = _window(days)
    days = (end - start).days + 1
    settings = SandboxSettings.from_environment()
    minimum = CostExplorerSandbox(
        SandboxGenerator(settings.seed), page_size=settings.page_size
    ).minimum_requests(build_daily_cost_request(start, end), caller=number, pull=settings.pull())

    reset_request_counts()
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = sync_accounts(
            [account_id],
            start,
            end,
            instance=instance,
            resources=_resources(url, key),
            run_config=QUIET_RUN_CONFIG,
        )
    if not result.success:
        raise RuntimeError(f"range run failed: {result.error}")
    range_seconds = time.perf_counter() - started
    range_requests = request_counts().paid
    progress(f"  requests: range run {range_requests} paid in {range_seconds:.1f} s")

    # One run per day asks Cost Explorer once per day: the same collector, one day at a time.
    engine = create_finops_engine(url)
    with psycopg_connection(engine) as connection:
        account = get_account(connection, account_id)
    engine.dispose()
    collector = AwsCostExplorerResource()
    credentials = sandbox_credentials(number)
    reset_request_counts()
    started = time.perf_counter()
    day = start
    while day <= end:
        collector.fetch_daily_costs(account, credentials, DateRange(day, day))
        day += dt.timedelta(days=1)
    per_day_seconds = time.perf_counter() - started
    per_day_requests = request_counts().paid
    progress(f"  requests: per day {per_day_requests} paid in {per_day_seconds:.1f} s")

    price = float(CE_PRICE_PER_REQUEST_USD)
    table = Table(
        f"Paid requests: one account, {days} days ({start}..{end}), "
        f"{settings.page_size} groups per page",
        ["strategy", "paid requests", "x page minimum", "USD", "fetch+load s"],
    )
    table.rows.append(
        ["page minimum (ceil(groups / page size))", minimum, 1.0, minimum * price, ""]
    )
    table.rows.append(
        [
            "range run (ours)",
            range_requests,
            round(range_requests / minimum, 2),
            range_requests * price,
            round(range_seconds, 1),
        ]
    )
    table.rows.append(
        [
            "one run per day",
            per_day_requests,
            round(per_day_requests / minimum, 2),
            per_day_requests * price,
            round(per_day_seconds, 1),
        ]
    )
    table.notes.append(
        "Counted by the sandbox. 'One run per day' calls the same collector once per day (what "
        "a per-day run does) without Dagster, so its seconds exclude run overhead and skip loading."
    )
    return table


def run_end_to_end(url: str, accounts: int, days: int, progress: Progress = print) -> Table:
    """K accounts × D days as range runs, against K single-day runs, on a sqlite instance."""
    key = generate_key()
    numbers = [f"5{index:011d}" for index in range(1, accounts + 1)]
    account_ids = _register(url, key, numbers)
    start, end = _window(days)
    days = (end - start).days + 1
    resources = _resources(url, key)
    table = Table(
        f"End to end: {accounts} accounts x {days} days through the cost_data asset "
        "(in-process runs, sqlite Dagster instance, sandbox Cost Explorer)",
        [
            "case",
            "runs",
            "account-days",
            "rows",
            "paid requests",
            "wall s",
            "ms per account-day",
            "x single-day run",
            "fetch+load s",
        ],
    )
    with (
        tempfile.TemporaryDirectory() as home,
        dg.DagsterInstance.local_temp(
            home, overrides={"telemetry": {"enabled": False}}
        ) as instance,
    ):
        # Registered in order, so every account is adjacent: one range run covers them all.
        instance.add_dynamic_partitions("cloud_accounts", account_ids)
        reset_request_counts()
        single_walls: list[float] = []
        single_rows = 0
        single_collect = 0.0
        baseline_day = start - dt.timedelta(days=1)
        for account_id in account_ids:
            started = time.perf_counter()
            result = sync_accounts(
                [account_id],
                baseline_day,
                baseline_day,
                instance=instance,
                resources=resources,
                run_config=QUIET_RUN_CONFIG,
            )
            single_walls.append(time.perf_counter() - started)
            single_rows += int(result.statistics.get("row_count", 0))
            single_collect += float(result.statistics.get("elapsed_seconds", 0.0))
            if not result.success:
                raise RuntimeError(f"single-day run failed: {result.error}")
        single_requests = request_counts().paid
        single_mean = sum(single_walls) / len(single_walls)
        progress(f"  e2e: {accounts} single-day runs, {single_mean:.2f} s each")

        reset_request_counts()
        started = time.perf_counter()
        result = sync_accounts(
            account_ids,
            start,
            end,
            instance=instance,
            resources=resources,
            run_config=QUIET_RUN_CONFIG,
        )
        wall = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(f"range run failed: {result.error}")
        runs = len(result.run_id.split(","))
        progress(f"  e2e: {accounts}x{days} in {runs} run(s), {wall:.1f} s")
    account_days = accounts * days
    per_single = single_mean * 1000
    table.rows.append(
        [
            "K single-day runs (baseline)",
            accounts,
            accounts,
            single_rows,
            single_requests,
            round(sum(single_walls), 1),
            round(per_single, 1),
            1.0,
            round(single_collect, 1),
        ]
    )
    per_range = wall / account_days * 1000
    table.rows.append(
        [
            "range runs (ours)",
            runs,
            account_days,
            int(result.statistics.get("row_count", 0)),
            request_counts().paid,
            round(wall, 1),
            round(per_range, 2),
            round(per_range / per_single, 4),
            round(float(result.statistics.get("elapsed_seconds", 0.0)), 1),
        ]
    )
    table.notes.append(
        "fetch+load s is the time inside the asset (Cost Explorer pages, parsing, loading); the "
        "rest of the wall time is Dagster: run start-up and one materialisation event per "
        "partition written to the instance's event log."
    )
    table.notes.append(
        "Runs go through dg.materialize in this process (the `finops sync`/demo path), not "
        "through the daemon; a daemon-launched run adds ~10-18 s of process start-up per run."
    )
    return table
