"""Only days Cost Explorer still keeps are offered and accepted: partitions, CLI, README."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from finops_pipeline.cli.runner import validate_window
from finops_pipeline.partitions import daily_partitions
from finops_pipeline.providers.aws.sandbox.service import history_start
from finops_pipeline.security.ciphertext import KeyRing
from tests.cli_sandbox import SANDBOX_NUMBERS, add_sandbox_account, cli_env, finops

README = Path(__file__).resolve().parents[2] / "README.md"


def test_daily_partitions_start_where_cost_explorer_history_starts() -> None:
    today = dt.datetime.now(dt.UTC).date()
    first = dt.date.fromisoformat(daily_partitions.get_first_partition_key())
    # The sandbox models Cost Explorer's retention on its own; the two must agree.
    assert first == history_start(today)
    assert (
        first.day == 1 and (today.year * 12 + today.month) - (first.year * 12 + first.month) == 13
    )
    assert daily_partitions.get_last_partition_key() == (today - dt.timedelta(days=1)).isoformat()


def test_a_start_before_the_history_is_refused_with_the_first_valid_day() -> None:
    today = dt.date(2026, 12, 1)
    validate_window(dt.date(2025, 11, 1), dt.date(2026, 11, 30), today=today)
    with pytest.raises(ValueError) as refused:
        validate_window(dt.date(2025, 10, 31), dt.date(2026, 11, 30), today=today)
    assert str(refused.value) == (
        "--start 2025-10-31 is older than Cost Explorer keeps daily data: it covers the current "
        "month and the previous 13, so from 2025-11-01 today"
    )


@pytest.mark.integration
def test_cli_refuses_an_expired_start_before_any_request(
    database_url: str, encryption_key: str, key_ring: KeyRing, tmp_path: Path
) -> None:
    account = add_sandbox_account(database_url, key_ring, SANDBOX_NUMBERS[0])
    today = dt.datetime.now(dt.UTC).date()
    expired = history_start(today) - dt.timedelta(days=1)
    env = cli_env(database_url, encryption_key, tmp_path)
    end = (today - dt.timedelta(days=2)).isoformat()
    result = finops(
        "sync", "--account", account, "--start", expired.isoformat(), "--end", end, env=env
    )
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert error == [
        f"Error: --start {expired} is older than Cost Explorer keeps daily data: it covers the "
        f"current month and the previous 13, so from {history_start(today)} today"
    ], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sandbox-requests.jsonl").exists()  # not even a refused request


def readme_sync_windows() -> list[tuple[dt.date, dt.date]]:
    """The --start/--end of every `finops sync` example in the README, as a shell expands them."""
    windows = []
    for line in README.read_text().splitlines():
        if not line.startswith("finops sync "):
            continue
        command = line.split("  #", 1)[0].replace("<id>", "ACCOUNT")
        expanded = subprocess.run(
            ["bash", "-c", f"printf '%s\\n' {command.removeprefix('finops sync ')}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        options = dict(zip(expanded[::2], expanded[1::2], strict=False))
        windows.append(
            (dt.date.fromisoformat(options["--start"]), dt.date.fromisoformat(options["--end"]))
        )
    return windows


def test_readme_sync_examples_are_valid_windows_today() -> None:
    windows = readme_sync_windows()
    assert windows
    for start, end in windows:
        validate_window(start, end)  # raises for a window Cost Explorer cannot serve
