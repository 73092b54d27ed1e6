"""AWS Organizations: a management account's members discovered through the sandbox's
GetDimensionValues (real boto3), collected as accounts of their own with LINKED_ACCOUNT
filters, and never fetched twice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from click.testing import CliRunner

from finops_pipeline.assets import cost_data
from finops_pipeline.cli.commands import main
from finops_pipeline.cli.onboarding import add_account
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from finops_pipeline.db.accounts import get_account, register_account
from finops_pipeline.db.organizations import management_accounts
from finops_pipeline.providers.aws.client import build_cost_explorer_client, client_config
from finops_pipeline.providers.aws.sandbox import (
    SANDBOX_ENDPOINT_URL,
    Pull,
    SandboxGenerator,
    read_generation,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.providers.aws.spec import AWS
from finops_pipeline.resources import (
    AwsCostExplorerResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import open_credentials
from finops_pipeline.sensors import aws_organization_members_sensor
from finops_pipeline.sync.organizations import discover_members
from finops_pipeline.sync.ranges import account_date_key
from tests.resources import pipeline_resources

pytestmark = pytest.mark.integration

PAYER, MEMBERS = "210000000001", ("210000000002", "210000000003")
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=6)


@pytest.fixture(autouse=True)
def sandbox_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "0")
    reset_request_counts()


def register_sandbox(
    connection: psycopg.Connection,
    ring: KeyRing,
    number: str,
    *,
    management_account: bool = False,
    payer_account_id: str | None = None,
) -> str:
    return register_account(
        connection,
        ring,
        tenant_id="acme-retail",
        name=f"acme {number}",
        provider="aws",
        provider_account_id=number,
        credentials=sandbox_credentials(number if payer_account_id is None else PAYER),
        endpoint_url=SANDBOX_ENDPOINT_URL,
        management_account=management_account,
        payer_account_id=payer_account_id,
    )


def discover(connection: psycopg.Connection, ring: KeyRing, payer: str) -> Any:
    (outcome,) = discover_members(
        connection,
        [payer],
        decrypt=lambda account: open_credentials(account, ring),
        ring=ring,
        lister=AwsCostExplorerResource(),
        today=TODAY,
    )
    return outcome


def members_of(connection: psycopg.Connection, payer: str) -> dict[str, tuple[str, bool]]:
    rows = connection.execute(
        "SELECT provider_account_id, status, member_gone_at IS NOT NULL FROM cloud_accounts "
        "WHERE payer_account_id = %s",
        (payer,),
    ).fetchall()
    return {number: (status, gone) for number, status, gone in rows}


def test_the_sandbox_lists_a_payers_organisation_page_by_page_through_boto3() -> None:
    def client(number: str) -> Any:
        return build_cost_explorer_client(
            sandbox_credentials(number),
            endpoint_url=SANDBOX_ENDPOINT_URL,
            config=client_config(),
            client_hook=AWS.client_hook,
        )

    period = {"Start": START.isoformat(), "End": TODAY.isoformat()}
    first = client(PAYER).get_dimension_values(
        TimePeriod=period, Dimension="LINKED_ACCOUNT", MaxResults=2
    )
    assert [v["Value"] for v in first["DimensionValues"]] == [PAYER, MEMBERS[0]]
    assert first["TotalSize"] == 3 and first["NextPageToken"]
    second = client(PAYER).get_dimension_values(
        TimePeriod=period,
        Dimension="LINKED_ACCOUNT",
        MaxResults=2,
        NextPageToken=first["NextPageToken"],
    )
    assert [v["Value"] for v in second["DimensionValues"]] == [MEMBERS[1]]
    assert "NextPageToken" not in second
    alone = client(MEMBERS[0]).get_dimension_values(TimePeriod=period, Dimension="LINKED_ACCOUNT")
    assert [v["Value"] for v in alone["DimensionValues"]] == [MEMBERS[0]]
    assert request_counts().paid == 3


def test_discovery_adds_members_with_the_payers_credentials_and_disables_gone_ones(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    payer = register_sandbox(connection, key_ring, PAYER, management_account=True)
    gone = register_sandbox(connection, key_ring, "210000000099", payer_account_id=payer)
    outcome = discover(connection, key_ring, payer)
    assert outcome.error is None and outcome.paid_requests == 1 == request_counts().paid
    assert len(outcome.changes.added) == 2 and outcome.changes.disabled == [gone]
    assert members_of(connection, payer) == {
        MEMBERS[0]: ("active", False),
        MEMBERS[1]: ("active", False),
        "210000000099": ("disabled", True),
    }
    for member_id in outcome.changes.added:
        member = get_account(connection, member_id)
        # A copy of the payer's credentials, bound to the member's own row.
        assert open_credentials(member, key_ring) == sandbox_credentials(PAYER)
        assert member.endpoint_url == SANDBOX_ENDPOINT_URL
        assert member.linked_account_filter == member.provider_account_id
    # The listing is paid and counted under the payer.
    assert connection.execute(
        "SELECT cloud_account_id::text, requests FROM paid_request_usage"
    ).fetchall() == [(payer, 1)]
    # Again: nothing new; the gone member stays disabled and is not deleted.
    again = discover(connection, key_ring, payer)
    assert again.changes.added == [] and again.changes.disabled == []
    assert again.changes.unchanged == 2
    assert members_of(connection, payer)["210000000099"] == ("disabled", True)
    assert management_accounts(connection, due_before=dt.datetime.now(dt.UTC)) == [payer]
    assert management_accounts(connection, due_before=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == []


def test_a_member_registered_with_its_own_credentials_is_not_fetched_twice(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    own = register_sandbox(connection, key_ring, MEMBERS[0])
    payer = register_sandbox(connection, key_ring, PAYER, management_account=True)
    outcome = discover(connection, key_ring, payer)
    assert outcome.changes.registered_separately == [MEMBERS[0]]
    assert list(members_of(connection, payer)) == [MEMBERS[1]]
    assert get_account(connection, own).payer_account_id is None
    # Registering its own credentials later takes a discovered member over, history and all.
    (member_id,) = outcome.changes.added
    taken = add_account(
        connection,
        key_ring,
        tenant_id="acme-retail",
        name="acme member with keys",
        provider="aws",
        provider_account_id=MEMBERS[1],
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key=sandbox_credentials(MEMBERS[1]).secret_access_key,
    )
    assert taken.account_id == member_id
    member = get_account(connection, member_id)
    assert member.payer_account_id is None and member.linked_account_filter is None
    assert discover(connection, key_ring, payer).changes.registered_separately == list(MEMBERS)


def test_members_and_the_payer_each_load_only_their_own_costs(
    connection: psycopg.Connection, key_ring: KeyRing, database_url: str, encryption_key: str
) -> None:
    payer = register_sandbox(connection, key_ring, PAYER, management_account=True)
    members = discover(connection, key_ring, payer).changes.added
    ids = [payer, *members]
    reset_request_counts()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources=pipeline_resources(database_url, encryption_key),
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(ids[0], START),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(ids[-1], END),
            },
        )
    assert result.success
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    # Every request went out with the payer's key; one per account and window.
    assert request_counts().by_account == {PAYER: 3}
    assert metadata["paid_requests_by_payer"].value == {payer: 3}
    generator, pull = SandboxGenerator(), Pull(as_of=TODAY, generation=read_generation())
    number_of = {account: get_account(connection, account).provider_account_id for account in ids}
    loaded = dict(
        connection.execute(
            "SELECT cloud_account_id::text, sum(unblended_cost) FROM cost_data GROUP BY 1"
        ).fetchall()
    )
    for account, number in number_of.items():
        expected = sum(
            (
                row.unblended
                for offset in range((END - START).days + 1)
                for row in generator.day_costs(number, START + dt.timedelta(days=offset), pull).rows
            ),
            Decimal(0),
        )
        # The payer's row holds its own costs only, not the organisation's sum.
        assert loaded[account] == expected, number


def test_the_sensor_and_the_cli_discover_members(
    connection: psycopg.Connection,
    key_ring: KeyRing,
    database_url: str,
    encryption_key: str,
    tmp_path: Path,
) -> None:
    payer = register_sandbox(connection, key_ring, PAYER, management_account=True)
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance,
            resources=pipeline_resources(database_url, encryption_key),
        ) as context,
    ):
        assert aws_organization_members_sensor(context) is None
        # Listed a moment ago: not due again for a day.
        skipped = aws_organization_members_sensor(context)
    assert isinstance(skipped, dg.SkipReason)
    assert sorted(members_of(connection, payer)) == list(MEMBERS)
    assert request_counts().paid == 1

    env = {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_HOME": str(tmp_path),
    }
    runner = CliRunner()
    result = runner.invoke(main, ["accounts", "discover", payer], env=env)
    assert result.exit_code == 0, result.output
    assert "0 added, 0 back, 0 gone (disabled), 2 unchanged" in result.output
    listing = runner.invoke(main, ["accounts", "list"], env=env).output
    assert "[payer of 2 members]" in listing and f"[member of {payer[:8]}]" in listing
    assert "(2 paid requests this month)" in listing
    refused = runner.invoke(
        main, ["accounts", "discover", members_of_id(connection, payer)], env=env
    )
    assert refused.exit_code == 1 and "is not a management account" in refused.output


def members_of_id(connection: psycopg.Connection, payer: str) -> str:
    row = connection.execute(
        "SELECT id::text FROM cloud_accounts WHERE payer_account_id = %s LIMIT 1", (payer,)
    ).fetchone()
    assert row is not None
    return str(row[0])
