"""Shared helpers: the scratch database, sizes, and the results table."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from finops_pipeline.db.embedded import embedded_database_url
from finops_pipeline.db.migrate import upgrade_database
from finops_pipeline.db.urls import to_libpq_url, to_psycopg_url, with_database

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB: ``VmHWM`` of its own address space.

    Not ``getrusage().ru_maxrss``: Linux carries that over across ``execve`` from the
    address space the process had before, and a case process started by ``subprocess``
    (vfork, then exec) would report at least the parent's size, the benchmark runner with
    Dagster imported, whatever it used itself.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Under /var/tmp, whose parents are world-traversable, so the embedded server opens no folder.
EMBEDDED_BENCH_HOME = Path(f"/var/tmp/finops-bench-{os.getuid()}")


@dataclass(frozen=True)
class Size:
    """How big each benchmark runs."""

    name: str
    load_rows: tuple[int, ...]
    request_days: int
    e2e_accounts: int
    e2e_days: int
    #: Sandbox accounts and days of history the anomaly detector is measured on.
    anomaly_accounts: int
    anomaly_days: int
    #: Only accounts with an injected spike in the window, so a short run still has some.
    anomaly_spiky_accounts: bool
    #: Active accounts the daily schedule's tick is measured at.
    schedule_accounts: int = 120
    #: The range run whose Dagster share is measured on a Postgres-backed instance.
    bookkeeping_accounts: int = 1
    bookkeeping_days: int = 5
    #: The backfill through dagster-daemon; 0 skips it (the tiny size: a daemon run costs
    #: 10-18 s of process start here, too slow for CI).
    daemon_accounts: int = 0
    daemon_days: int = 3
    #: Groups of the one AWS window the collector's memory is measured on (2,500 a day).
    collect_groups: int = 10_000


SIZES = {
    # Small enough to run as a test in CI (under ~30 s), so the benchmarks cannot rot.
    "tiny": Size(
        "tiny",
        load_rows=(1_000,),
        request_days=5,
        e2e_accounts=1,
        e2e_days=3,
        anomaly_accounts=12,
        anomaly_days=120,
        anomaly_spiky_accounts=True,
    ),
    "full": Size(
        "full",
        load_rows=(100_000, 1_000_000),
        request_days=396,
        e2e_accounts=20,
        e2e_days=396,
        anomaly_accounts=60,
        anomaly_days=396,
        anomaly_spiky_accounts=False,
        schedule_accounts=10_000,
        bookkeeping_accounts=4,
        bookkeeping_days=396,
        daemon_accounts=50,
        daemon_days=396,
        collect_groups=1_000_000,
    ),
}


@dataclass
class Table:
    """One benchmark's rows, printed as an aligned table."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        cells = [[str(c) for c in self.columns]] + [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [f"## {self.title}", ""]
        for index, row in enumerate(cells):
            lines.append(
                "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            )
            if index == 0:
                lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": self.rows,
            "notes": self.notes,
        }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def server_url() -> str:
    """FINOPS_BENCH_DATABASE_URL, else DATABASE_URL, else the embedded server."""
    for name in ("FINOPS_BENCH_DATABASE_URL", "DATABASE_URL"):
        configured = os.environ.get(name, "").strip()
        if configured:
            return configured
    return embedded_database_url(EMBEDDED_BENCH_HOME)


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A freshly migrated database, dropped afterwards."""
    name = f"finops_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    engine = sa.create_engine(to_psycopg_url(url), poolclass=sa.pool.NullPool)
    upgrade_database(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_results(size: str, tables: Sequence[Table], output: Path | None = None) -> Path:
    """Write the tables as Markdown and JSON; returns the Markdown path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = output or RESULTS_DIR / f"{stamp}-{size}"
    base.parent.mkdir(parents=True, exist_ok=True)
    markdown = base.with_suffix(".md")
    markdown.write_text("\n\n".join(table.render() for table in tables) + "\n")
    base.with_suffix(".json").write_text(
        json.dumps([table.as_dict() for table in tables], indent=2, default=str)
    )
    return markdown
