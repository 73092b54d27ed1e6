"""``finops export focus``: one tenant's FOCUS rows, through the reporting role's RLS path."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

from finops_pipeline.db import focus_export
from finops_pipeline.db.focus_export import FOCUS_COLUMNS, export_focus, format_csv_value
from finops_pipeline.db.tenants import PIPELINE_ROLE
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.security.ciphertext import KeyRing
from tests.cost_rows import rows_per_tenant, seed_tenants

pytestmark = pytest.mark.integration

START, END = dt.date(2025, 10, 1), dt.date(2025, 10, 31)
NUMBERS = {"tenant-a": ("320000000001", "320000000002"), "tenant-b": ("430000000001",)}


@pytest.fixture
def seeded(connection: psycopg.Connection, key_ring: KeyRing) -> dict[str, int]:
    """Two tenants with sandbox costs for September to November; rows per tenant in October."""
    seed_tenants(
        connection, key_ring, NUMBERS, START.replace(month=9), END.replace(month=11, day=30)
    )
    return rows_per_tenant(connection, START, END)


def login(
    database_url: str, connection: psycopg.Connection, *roles: str
) -> Iterator[psycopg.Connection]:
    name = f"finops_login_{uuid.uuid4().hex[:10]}"
    connection.execute(f"CREATE ROLE {name} LOGIN")
    for role in roles:
        connection.execute(f"GRANT {role} TO {name}")
    conninfo = psycopg.conninfo.make_conninfo(to_libpq_url(database_url), user=name)
    with psycopg.connect(conninfo, autocommit=True) as session:
        yield session
    connection.execute(f"DROP OWNED BY {name}")
    connection.execute(f"DROP ROLE {name}")


@pytest.fixture
def pipeline_login(
    database_url: str, connection: psycopg.Connection
) -> Iterator[psycopg.Connection]:
    """The pipeline's own login: in finops_pipeline, which may read every tenant."""
    yield from login(database_url, connection, PIPELINE_ROLE)


@pytest.fixture
def stranger(database_url: str, connection: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A login in neither role."""
    yield from login(database_url, connection)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_a_pipeline_login_exports_one_tenant_only(
    seeded: dict[str, int], pipeline_login: psycopg.Connection, tmp_path: Path
) -> None:
    # The pipeline's role sees both tenants on the tables; the export must not.
    assert {row[0] for row in pipeline_login.execute("SELECT tenant_id FROM cost_data")} == {
        "tenant-a",
        "tenant-b",
    }
    output = tmp_path / "a.csv"
    rows = export_focus(
        pipeline_login, "tenant-a", START, END, export_format="csv", output=output, batch_rows=500
    )
    exported = read_csv(output)
    assert rows == len(exported) == seeded["tenant-a"]
    assert list(exported[0]) == list(FOCUS_COLUMNS)
    assert {row["x_TenantId"] for row in exported} == {"tenant-a"}
    assert {row["BillingAccountId"] for row in exported} == set(NUMBERS["tenant-a"])
    days = {row["x_UsageDate"] for row in exported}
    assert min(days) == START.isoformat() and max(days) == END.isoformat()
    assert not list(tmp_path.glob(".*partial"))


def test_parquet_holds_the_same_rows_as_csv(
    seeded: dict[str, int], connection: psycopg.Connection, tmp_path: Path
) -> None:
    export_focus(connection, "tenant-b", START, END, export_format="csv", output=tmp_path / "b.csv")
    export_focus(
        connection, "tenant-b", START, END, export_format="parquet", output=tmp_path / "b.parquet"
    )
    table = pq.read_table(tmp_path / "b.parquet")
    assert table.column_names == list(FOCUS_COLUMNS)
    assert str(table.schema.field("BilledCost").type) == "decimal128(38, 12)"
    assert str(table.schema.field("ChargePeriodStart").type).startswith("timestamp")
    from_parquet = [
        {name: format_csv_value(value) for name, value in row.items()} for row in table.to_pylist()
    ]
    from_csv = read_csv(tmp_path / "b.csv")
    assert len(from_parquet) == len(from_csv) == seeded["tenant-b"]
    for parquet_row, csv_row in zip(from_parquet, from_csv, strict=True):
        for name in FOCUS_COLUMNS:
            if name in focus_export.DECIMAL_COLUMNS and csv_row[name]:
                assert float(parquet_row[name]) == float(csv_row[name])  # 12 vs 10 places
            else:
                assert parquet_row[name] == csv_row[name], name


def test_a_login_without_the_reporting_role_is_told_what_to_grant(
    seeded: dict[str, int], stranger: psycopg.Connection
) -> None:
    with pytest.raises(ConfigurationError, match="GRANT finops_reporting TO finops_pipeline"):
        export_focus(stranger, "tenant-a", START, END, export_format="csv", output=io.StringIO())


def test_bad_requests_fail_before_writing_anything(
    seeded: dict[str, int], connection: psycopg.Connection, tmp_path: Path
) -> None:
    output = tmp_path / "x.csv"
    with pytest.raises(ConfigurationError, match="unknown"):
        export_focus(connection, "tenant-z", START, END, export_format="csv", output=output)
    with pytest.raises(ConfigurationError, match="before --start"):
        export_focus(connection, "tenant-a", END, START, export_format="csv", output=output)
    with pytest.raises(ConfigurationError, match="Parquet needs a file"):
        export_focus(
            connection, "tenant-a", START, END, export_format="parquet", output=io.StringIO()
        )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_no_file(
    seeded: dict[str, int],
    connection: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = tmp_path / "a.csv"
    output.write_text("the previous export\n")
    calls = iter(range(10_000))

    def failing(value: object) -> str:
        if next(calls) == 5_000:
            raise OSError("disk full")
        return format_csv_value(value)

    monkeypatch.setattr(focus_export, "format_csv_value", failing)
    with pytest.raises(OSError, match="disk full"):
        export_focus(
            connection, "tenant-a", START, END, export_format="csv", output=output, batch_rows=50
        )
    assert output.read_text() == "the previous export\n"
    assert [path.name for path in tmp_path.iterdir()] == ["a.csv"]
