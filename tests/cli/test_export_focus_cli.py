"""`finops export focus`: CSV to stdout, Parquet to a file, one tenant only, one-line errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from finops_pipeline.cli.commands import main
from finops_pipeline.security.ciphertext import KeyRing
from tests.cost_rows import rows_per_tenant, seed_tenants

pytestmark = pytest.mark.integration

START, END = dt.date(2025, 10, 1), dt.date(2025, 10, 31)
NUMBERS = {"tenant-a": ("320000000001",), "tenant-b": ("430000000001",)}


@pytest.fixture
def seeded(connection: psycopg.Connection, key_ring: KeyRing) -> dict[str, int]:
    """Two tenants with sandbox costs for September to November; rows per tenant in October."""
    seed_tenants(
        connection, key_ring, NUMBERS, START.replace(month=9), END.replace(month=11, day=30)
    )
    return rows_per_tenant(connection, START, END)


def test_cli_writes_csv_to_stdout_and_parquet_to_a_file(
    seeded: dict[str, int], database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "FINOPS_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    args = [
        "export",
        "focus",
        "--tenant",
        "tenant-b",
        "--start",
        "2025-10-01",
        "--end",
        "2025-10-31",
    ]
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == seeded["tenant-b"] and {row["x_TenantId"] for row in rows} == {"tenant-b"}
    assert f"exported {seeded['tenant-b']:,} FOCUS rows for tenant-b" in result.stderr

    output = tmp_path / "b.parquet"
    result = runner.invoke(main, [*args, "--format", "parquet", "--output", str(output)], env=env)
    assert result.exit_code == 0, result.stderr
    assert pq.read_metadata(output).num_rows == seeded["tenant-b"]

    result = runner.invoke(main, [*args, "--format", "parquet"], env=env)
    assert result.exit_code == 2 and "--output" in result.stderr
    result = runner.invoke(main, [*args[:-1], "2025-13-01"], env=env)
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.stderr
    result = runner.invoke(main, ["export", "focus", "--tenant", "nobody", *args[4:]], env=env)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: Tenant 'nobody' is unknown")
