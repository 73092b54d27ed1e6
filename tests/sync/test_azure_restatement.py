"""A restated Azure month, through the real SDK and a real run: changed values are updated and
keys Azure no longer reports are deleted."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from finops_pipeline.providers.azure.sandbox.catalogue import RESERVATION_PURCHASE_METER
from finops_pipeline.providers.azure.sandbox.hook import shared_sandbox
from finops_pipeline.security.ciphertext import KeyRing
from tests.azure_sandbox import PRODUCTION, add_azure_subscription
from tests.sync.test_mixed_providers import run_range

pytestmark = pytest.mark.integration


def table(connection: psycopg.Connection) -> dict[tuple[object, ...], tuple[object, ...]]:
    return {
        (day, service, meter): (unblended, amortized, estimated)
        for day, service, meter, unblended, amortized, estimated in connection.execute(
            "SELECT date, service, usage_type, unblended_cost, amortized_cost, is_estimated "
            "FROM cost_data WHERE provider = 'azure'"
        ).fetchall()
    }


def test_a_restated_month_is_updated_and_vanished_keys_are_deleted(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("FINOPS_SANDBOX_AS_OF", "FINOPS_SANDBOX_SEED", "FINOPS_AZURE_SANDBOX_PAGE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    account = add_azure_subscription(connection, key_ring, PRODUCTION)
    with dg.instance_for_test() as instance:
        first = run_range(database_url, encryption_key, [account], instance)
        assert first.success
        before = table(connection)

        # The next pull: the open month is restated, and one meter is gone (a charge Azure
        # reassigned), so its rows must leave the table.
        monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "2")
        sandbox = shared_sandbox()
        service, meter = sorted({(s, m) for _d, s, m in before})[0]
        original = sandbox._day_rows
        monkeypatch.setattr(
            sandbox,
            "_day_rows",
            lambda sub, day, pull: tuple(
                row
                for row in original(sub, day, pull)
                if (row.service, row.meter) != (service, meter)
            ),
        )
        second = run_range(database_url, encryption_key, [account], instance)

    assert second.success
    after = table(connection)
    vanished = {key for key in before if key[1:] == (service, meter)}
    assert vanished and not vanished & set(after)
    assert set(after) == set(before) - vanished
    changed = {key for key in after if after[key][:2] != before[key][:2]}
    # Every usage row of an open month moved between pulls; a reservation purchase is a fixed
    # price and does not.
    assert changed == {key for key in after if key[2] != RESERVATION_PURCHASE_METER}
    metadata = second.asset_materializations_for_node("cost_data")[0].metadata
    assert metadata["rows_removed"].value == len(vanished)
    assert metadata["rows_restated"].value == len(changed)
    assert metadata["rows_inserted"].value == 0
