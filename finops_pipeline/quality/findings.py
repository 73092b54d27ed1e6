"""What a data-quality check found, per account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: How many day ranges a message lists before it only counts the rest.
MAX_RANGES_LISTED = 10


@dataclass(frozen=True)
class AccountFinding:
    """One account's result of one check: no problems means it passed."""

    cloud_account_id: str
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        return "ok" if self.passed else "; ".join(self.problems)


@dataclass(frozen=True)
class CheckResult:
    """One check over a set of accounts, with a finding for every account checked."""

    check: str
    findings: tuple[AccountFinding, ...]

    @property
    def passed(self) -> bool:
        return all(finding.passed for finding in self.findings)

    @property
    def failing(self) -> tuple[AccountFinding, ...]:
        return tuple(finding for finding in self.findings if not finding.passed)

    @property
    def description(self) -> str:
        """One line: how many accounts passed, and the failing ones with their problems."""
        total = len(self.findings)
        if self.passed:
            return f"{self.check}: all {total} accounts pass"
        failing = "; ".join(
            f"{finding.cloud_account_id}: {finding.summary}" for finding in self.failing
        )
        return f"{self.check}: {len(self.failing)} of {total} accounts fail. {failing}"

    def per_account(self) -> dict[str, str]:
        """Account id -> "ok" or its problems: metadata a person can read in the UI."""
        return {finding.cloud_account_id: finding.summary for finding in self.findings}


def build_result(
    check: str, accounts: Iterable[str], problems: Mapping[str, list[str]]
) -> CheckResult:
    """A result with one finding per account in ``accounts`` or ``problems``, sorted by id."""
    ids = sorted(set(accounts) | set(problems))
    return CheckResult(
        check=check,
        findings=tuple(AccountFinding(i, tuple(problems.get(i, ()))) for i in ids),
    )


def day_ranges(days: Iterable[dt.date], limit: int = MAX_RANGES_LISTED) -> str:
    """Days as compact ranges: ``2025-10-03..2025-10-05, 2025-10-09`` (then "and N more")."""
    ordered = sorted(set(days))
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in ordered:
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    shown = [
        first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
        for first, last in ranges[:limit]
    ]
    hidden = sum((last - first).days + 1 for first, last in ranges[limit:])
    return ", ".join(shown) + (f" and {hidden} more days" if hidden else "")
