"""The ``cost_data_focus`` view (FOCUS 1.2) and its mapping tables, on real Postgres."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.rows import dict_row

from finops_pipeline.db.focus_export import FOCUS_COLUMNS
from finops_pipeline.db.migrate import current_revision, head_revision, upgrade_database
from finops_pipeline.db.tenants import PIPELINE_ROLE, REPORTING_ROLE, tenant_transaction
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.providers.aws.sandbox.catalogue import SERVICES
from finops_pipeline.security.ciphertext import KeyRing
from tests.cost_rows import add_account, insert_cost, load_sandbox

pytestmark = pytest.mark.integration

DAY = dt.date(2025, 3, 31)
UTC = dt.UTC


def focus_rows(connection: psycopg.Connection, where: str = "TRUE") -> list[dict[str, Any]]:
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f'SELECT * FROM cost_data_focus WHERE {where} ORDER BY "x_UsageType"'
        ).fetchall()


def test_every_sandbox_service_has_a_service_category(connection: psycopg.Connection) -> None:
    mapped = {
        row[0]
        for row in connection.execute(
            "SELECT service_name FROM focus_service_categories WHERE provider = 'aws'"
        ).fetchall()
    }
    assert {service.name for service in SERVICES} - mapped == set()
    counts = dict(
        connection.execute(
            "SELECT provider, count(*) FROM focus_service_categories GROUP BY provider"
        ).fetchall()
    )
    assert counts["aws"] > len(SERVICES) and counts["azure"] >= 50 and counts["gcp"] >= 50


def test_a_mapping_must_name_an_allowed_category_pair(connection: psycopg.Connection) -> None:
    allowed = connection.execute("SELECT count(*) FROM focus_service_subcategories").fetchone()
    assert allowed == (82,)  # FOCUS 1.2: 82 subcategories under 19 categories
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        connection.execute(
            "INSERT INTO focus_service_categories VALUES ('aws', 'Made Up', 'Compute', 'Search')"
        )
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        connection.execute(
            "INSERT INTO focus_service_categories VALUES ('aws', 'Made Up', 'Servers', 'Other')"
        )


def test_view_columns_are_the_export_columns(connection: psycopg.Connection) -> None:
    columns = [
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'cost_data_focus' ORDER BY ordinal_position"
        ).fetchall()
    ]
    assert tuple(columns) == FOCUS_COLUMNS
    options = connection.execute(
        "SELECT reloptions FROM pg_class WHERE relname = 'cost_data_focus'"
    ).fetchone()
    assert options == (["security_invoker=true"],)


def test_known_rows_in_focus_terms(connection: psycopg.Connection, key_ring: KeyRing) -> None:
    account = add_account(connection, key_ring, "tenant-a", "123456789012", "a prod")
    row = {"connection": connection, "tenant_id": "tenant-a", "account_id": account, "day": DAY}
    insert_cost(
        **row, service="Amazon Elastic Compute Cloud - Compute",
        usage_type="USW2-BoxUsage:m5.large", unblended="10.5000000001", amortized="8.61",
        net_unblended="10.0", quantity="100", unit="Hrs",
    )  # fmt: skip
    insert_cost(
        **row, service="Savings Plans for AWS Compute usage", usage_type="ComputeSP:1yrNoUpfront",
        unblended="5", amortized="1.25", quantity="24", unit="Hrs",
    )  # fmt: skip
    insert_cost(**row, service="Tax", usage_type="Tax", unblended="1.25")
    insert_cost(
        **row, service="Amazon Simple Storage Service",
        usage_type="Credit-PromotionalCredits", unblended="-2.5",
    )  # fmt: skip
    insert_cost(**row, service="AWS Lambda", usage_type="Refund", unblended="-1")
    insert_cost(
        **row, service="Some Service From Next Year", usage_type="Thing", unblended="3",
        quantity="7", unit="Widgets",
    )  # fmt: skip
    insert_cost(
        **row, service="AWS Lambda", usage_type="Lambda-GB-Second", unblended="2",
        quantity="1000", unit="Lambda-GB-Second",
    )  # fmt: skip
    # The session's time zone must not move any timestamp.
    connection.execute("SET TimeZone = 'Pacific/Auckland'")
    rows = {row["x_UsageType"]: row for row in focus_rows(connection)}
    assert len(rows) == 7

    common = {
        "BillingAccountId": "123456789012",
        "BillingAccountName": "a prod",
        "SubAccountId": "123456789012",
        "SubAccountName": "a prod",
        "BillingCurrency": "USD",
        "BillingPeriodStart": dt.datetime(2025, 3, 1, tzinfo=UTC),
        "BillingPeriodEnd": dt.datetime(2025, 4, 1, tzinfo=UTC),
        "ChargePeriodStart": dt.datetime(2025, 3, 31, tzinfo=UTC),
        "ChargePeriodEnd": dt.datetime(2025, 4, 1, tzinfo=UTC),
        "ChargeClass": None,
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "InvoiceIssuerName": "AWS",
        "x_TenantId": "tenant-a",
        "x_CloudAccountId": uuid.UUID(account),
        "x_Provider": "aws",
        "x_UsageDate": DAY,
        "x_IsEstimated": False,
    }
    for focus in rows.values():
        assert {key: focus[key] for key in common} == common

    ec2 = rows["USW2-BoxUsage:m5.large"]
    assert {
        key: ec2[key]
        for key in (
            "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ChargeCategory",
            "ChargeFrequency", "ChargeDescription", "PricingQuantity", "PricingUnit",
            "ConsumedQuantity", "ConsumedUnit", "ServiceName", "ServiceCategory",
            "ServiceSubcategory", "x_AmortizedCost", "x_NetUnblendedCost",
        )
    } == {
        "BilledCost": Decimal("10.5000000001"), "EffectiveCost": Decimal("8.61"),
        "ListCost": Decimal("10.5000000001"), "ContractedCost": Decimal("10.5000000001"),
        "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
        "ChargeDescription": "USW2-BoxUsage:m5.large", "PricingQuantity": Decimal(100),
        "PricingUnit": "Hours", "ConsumedQuantity": Decimal(100), "ConsumedUnit": "Hours",
        "ServiceName": "Amazon Elastic Compute Cloud - Compute", "ServiceCategory": "Compute",
        "ServiceSubcategory": "Virtual Machines", "x_AmortizedCost": Decimal("8.61"),
        "x_NetUnblendedCost": Decimal("10.0"),
    }  # fmt: skip

    fee = rows["ComputeSP:1yrNoUpfront"]
    assert (fee["ChargeCategory"], fee["ChargeFrequency"]) == ("Purchase", "Recurring")
    assert (fee["BilledCost"], fee["EffectiveCost"], fee["x_AmortizedCost"]) == (5, 0, 1.25)
    assert (fee["PricingQuantity"], fee["PricingUnit"]) == (24, "Hours")
    assert (fee["ConsumedQuantity"], fee["ConsumedUnit"]) == (None, None)

    tax = rows["Tax"]
    assert (tax["ChargeCategory"], tax["ChargeFrequency"], tax["ServiceCategory"]) == (
        "Tax", "Recurring", "Other",
    )  # fmt: skip
    assert (tax["PricingQuantity"], tax["PricingUnit"], tax["ConsumedQuantity"]) == (None,) * 3

    for usage_type in ("Credit-PromotionalCredits", "Refund"):
        credit = rows[usage_type]
        assert (credit["ChargeCategory"], credit["ChargeFrequency"]) == ("Credit", "One-Time")
        amounts = {credit[key] for key in ("BilledCost", "EffectiveCost", "ListCost")}
        assert amounts == {credit["ContractedCost"]} and credit["BilledCost"] < 0
        assert (credit["PricingQuantity"], credit["ConsumedQuantity"]) == (None, None)

    unknown = rows["Thing"]
    assert (unknown["ServiceCategory"], unknown["ServiceSubcategory"]) == ("Other", "Other (Other)")
    assert unknown["PricingUnit"] == "Widgets"  # units FOCUS spells the same pass through
    assert rows["Lambda-GB-Second"]["PricingUnit"] == "GB-Seconds"
    assert rows["Lambda-GB-Second"]["ServiceSubcategory"] == "Serverless Compute"


def test_removed_account_keeps_its_rows_with_a_billing_account_id(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    account = add_account(connection, key_ring, "tenant-a", "123456789012")
    insert_cost(connection, "tenant-a", account, DAY, "AWS Lambda", "Request", "1", unit="Requests")
    connection.execute("DELETE FROM cloud_accounts WHERE id = %s", (account,))
    (row,) = focus_rows(connection)
    assert row["BillingAccountId"] == account  # our id: FOCUS forbids a NULL billing account
    assert (row["SubAccountId"], row["SubAccountName"], row["BillingAccountName"]) == (None,) * 3


# FOCUS 1.2 requirements the validator skips as "dynamic" or cannot bind without commitment
# discount columns, as SQL that selects the violating rows.
REQUIREMENTS = {
    "ConsumedQuantity-C-004: NULL unless Usage": (
        '"ChargeCategory" <> \'Usage\' AND "ConsumedQuantity" IS NOT NULL'
    ),
    "ConsumedQuantity-C-006: set on Usage (no correction)": (
        '"ChargeCategory" = \'Usage\' AND "ChargeClass" IS NULL AND "ConsumedQuantity" IS NULL'
    ),
    "ConsumedUnit-C-005/006: NULL exactly when ConsumedQuantity is": (
        '("ConsumedUnit" IS NULL) <> ("ConsumedQuantity" IS NULL)'
    ),
    "PricingQuantity-C-004: NULL on Tax": '"ChargeCategory" = \'Tax\' AND "PricingQuantity" IS NOT NULL',
    "PricingQuantity-C-005: set on Usage and Purchase": (
        "\"ChargeCategory\" IN ('Usage', 'Purchase') AND \"PricingQuantity\" IS NULL"
    ),
    "PricingUnit-C-005/006: NULL exactly when PricingQuantity is": (
        '("PricingUnit" IS NULL) <> ("PricingQuantity" IS NULL)'
    ),
    "EffectiveCost-C-005: 0 on commitment purchases": (
        '"ChargeCategory" = \'Purchase\' AND "EffectiveCost" <> 0'
    ),
    "EffectiveCost/ListCost/ContractedCost-C-008/010: equal BilledCost on credits": (
        '"ChargeCategory" = \'Credit\' AND NOT ("EffectiveCost" = "BilledCost" '
        'AND "ListCost" = "BilledCost" AND "ContractedCost" = "BilledCost")'
    ),
    "ChargeFrequency-C-004: not Usage-Based on Purchase": (
        "\"ChargeCategory\" = 'Purchase' AND \"ChargeFrequency\" = 'Usage-Based'"
    ),
    "BillingPeriodEnd-C-004: exclusive end of a calendar month": (
        '"BillingPeriodEnd" <> "BillingPeriodStart" + interval \'1 month\' '
        "OR date_part('day', \"BillingPeriodStart\" AT TIME ZONE 'UTC') <> 1"
    ),
    "ChargePeriod: one UTC day inside its billing period": (
        '"ChargePeriodEnd" <> "ChargePeriodStart" + interval \'1 day\' '
        'OR "ChargePeriodStart" < "BillingPeriodStart" OR "ChargePeriodEnd" > "BillingPeriodEnd"'
    ),
    "ServiceSubcategory-C-004: one parent ServiceCategory": (
        "NOT EXISTS (SELECT 1 FROM focus_service_subcategories p WHERE p.service_category = "
        '"ServiceCategory" AND p.service_subcategory = "ServiceSubcategory")'
    ),
}


def test_sandbox_data_meets_the_requirements_the_validator_cannot_check(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    # A payer whose organisation has commitment fees, tax (from 2025-09-19) and refunds.
    account = add_account(connection, key_ring, "tenant-a", "210000000001")
    loaded = load_sandbox(
        connection, "tenant-a", account, "210000000001", dt.date(2025, 9, 20), dt.date(2025, 12, 31)
    )
    assert connection.execute("SELECT count(*) FROM cost_data_focus").fetchone() == (loaded,)
    categories = dict(
        connection.execute(
            'SELECT "ChargeCategory", count(*) FROM cost_data_focus GROUP BY 1'
        ).fetchall()
    )
    assert set(categories) == {"Usage", "Purchase", "Tax", "Credit"}, categories
    violations = {
        name: connection.execute(f"SELECT count(*) FROM cost_data_focus WHERE {where}").fetchone()
        for name, where in REQUIREMENTS.items()
    }
    assert violations == dict.fromkeys(REQUIREMENTS, (0,))
    unmapped = connection.execute(
        'SELECT DISTINCT "ServiceName" FROM cost_data_focus WHERE "ServiceCategory" = \'Other\''
    ).fetchall()
    assert unmapped == [("Tax",)]
    totals = connection.execute(
        'SELECT sum("BilledCost"), sum("x_AmortizedCost") FROM cost_data_focus'
    ).fetchone()
    assert (
        totals
        == connection.execute(
            "SELECT sum(unblended_cost), sum(amortized_cost) FROM cost_data"
        ).fetchone()
    )


@pytest.fixture
def dashboard(database_url: str, connection: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A LOGIN role in finops_reporting only, as a dashboard connects."""
    name = f"finops_dash_{uuid.uuid4().hex[:10]}"
    connection.execute(f"CREATE ROLE {name} LOGIN")
    connection.execute(f"GRANT {REPORTING_ROLE} TO {name}")
    conninfo = psycopg.conninfo.make_conninfo(to_libpq_url(database_url), user=name)
    with psycopg.connect(conninfo, autocommit=True) as login:
        yield login
    connection.execute(f"DROP OWNED BY {name}")
    connection.execute(f"DROP ROLE {name}")


def test_view_obeys_row_level_security(
    connection: psycopg.Connection, key_ring: KeyRing, dashboard: psycopg.Connection
) -> None:
    for tenant, number in (("tenant-a", "111111111111"), ("tenant-b", "222222222222")):
        account = add_account(connection, key_ring, tenant, number)
        insert_cost(connection, tenant, account, DAY, "AWS Lambda", "Request", "1", unit="Requests")
    # The view's owner is the test's superuser: without security_invoker it would show both.
    with tenant_transaction(dashboard, "tenant-a"):
        seen = dashboard.execute(
            'SELECT "x_TenantId", "BillingAccountId", "ServiceCategory" FROM cost_data_focus'
        ).fetchall()
        assert seen == [("tenant-a", "111111111111", "Compute")]
    assert dashboard.execute("SELECT count(*) FROM cost_data_focus").fetchone() == (0,)


def test_migration_downgrades_and_upgrades_again(
    engine: sa.Engine, connection: psycopg.Connection
) -> None:
    from alembic import command

    from finops_pipeline.db.migrate import _alembic_config

    with engine.begin() as sa_connection:
        command.downgrade(_alembic_config(sa_connection), "0005-1")
    tables = (
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'focus%' OR relname = 'cost_data_focus'"
    )
    assert connection.execute(tables).fetchone() == (0,)
    upgrade_database(engine)
    assert current_revision(engine) == head_revision()
    assert connection.execute(tables).fetchone()[0] >= 4
    # The CLI's login (a finops_pipeline member) may take the reporting role for exports.
    assert connection.execute(
        "SELECT pg_has_role(%s, %s, 'MEMBER')", (PIPELINE_ROLE, REPORTING_ROLE)
    ).fetchone() == (True,)
