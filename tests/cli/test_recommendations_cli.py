"""`finops recommendations` as a user runs it, against a real database."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from finops_pipeline.db.accounts import get_account
from finops_pipeline.db.recommendations import refresh_recommendations
from finops_pipeline.insights.recommendations import (
    KIND_COMMITMENT,
    KIND_RIGHTSIZE,
    Recommendation,
)
from finops_pipeline.security.ciphertext import KeyRing
from tests.cli_sandbox import cli_env, finops
from tests.cost_rows import add_account

pytestmark = pytest.mark.integration

NUMBER = "320000000001"
WEEK_1 = dt.datetime(2026, 6, 1, 6, tzinfo=dt.UTC)
WEEK_2 = dt.datetime(2026, 6, 8, 6, tzinfo=dt.UTC)


def rec(resource: str, savings: str, kind: str = KIND_RIGHTSIZE) -> Recommendation:
    return Recommendation(
        provider="aws",
        account=NUMBER,
        source="rightsizing" if kind == KIND_RIGHTSIZE else "savings_plans",
        kind=kind,
        resource_id=resource,
        current="m5.xlarge, US East (N. Virginia)",
        recommended="m5.large",
        estimated_monthly_savings=Decimal(savings),
        currency="USD",
        raw={"id": resource},
    )


def test_lists_the_open_recommendations_largest_savings_first(
    database_url: str,
    encryption_key: str,
    connection: psycopg.Connection,
    key_ring: KeyRing,
    tmp_path: Path,
) -> None:
    account = get_account(connection, add_account(connection, key_ring, "globex", NUMBER))
    refresh_recommendations(
        connection,
        account,
        "aws",
        [
            rec("i-small", "7.50"),
            rec("i-gone", "999.00"),
            rec("COMPUTE_SP/1y", "120.25", KIND_COMMITMENT),
        ],
        seen_at=WEEK_1,
    )
    # i-gone disappears the week after: resolved, so never listed.
    refresh_recommendations(
        connection,
        account,
        "aws",
        [rec("i-small", "7.50"), rec("COMPUTE_SP/1y", "120.25", KIND_COMMITMENT)],
        seen_at=WEEK_2,
    )
    env = cli_env(database_url, encryption_key, tmp_path)

    listed = finops("recommendations", "--tenant", "globex", "--output", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert [
        (r["resource"], r["monthly_savings"], r["kind"]) for r in report["recommendations"]
    ] == [
        ("COMPUTE_SP/1y", "120.25", KIND_COMMITMENT),
        ("i-small", "7.50", KIND_RIGHTSIZE),
    ]
    assert report["open_totals"] == [{"currency": "USD", "count": 2, "monthly_savings": "127.75"}]

    text = finops("recommendations", "--tenant", "globex", "--limit", "1", env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "open: 2 worth 127.75 USD/month" in lines[0]
    assert len(lines) == 3 and "120.25 USD" in lines[2] and "i-small" not in text.stdout


def test_unknown_and_blank_tenants_are_one_line_errors(
    database_url: str, encryption_key: str, tmp_path: Path
) -> None:
    env = cli_env(database_url, encryption_key, tmp_path)
    unknown = finops("recommendations", "--tenant", "nobody", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().startswith("error: No accounts or recommendations")
    assert "Traceback" not in unknown.stderr
    blank = finops("recommendations", "--tenant", " ", env=env)
    assert blank.returncode == 2
