"""AWS Organizations members, as a management (payer) account's Cost Explorer sees them.

A payer's Cost Explorer lists every member with costs through the LINKED_ACCOUNT dimension
(``GetDimensionValues``; each page is a paid request, like every Cost Explorer call). Unlike
Organizations' ``ListAccounts`` it needs no permission beyond ``ce:GetDimensionValues``, and it
lists exactly the accounts whose costs the payer can be asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from finops_pipeline.errors import ProviderAccessDeniedError, ProviderDataError, ProviderError
from finops_pipeline.providers.aws.paging import translate_client_error
from finops_pipeline.sync.windows import first_of_month

#: Members with costs since the 1st of the previous month count as present: a member closed
#: longer ago has nothing left to collect, and is disabled (never deleted).
DISCOVERY_MONTHS_BACK = 1
_MAX_PAGES = 100


@dataclass(frozen=True)
class LinkedAccount:
    """One account of the organisation: its 12-digit number and the name AWS shows."""

    number: str
    name: str


@dataclass(frozen=True)
class DiscoveredMembers:
    """The organisation's accounts with costs in the period, and what asking cost."""

    accounts: tuple[LinkedAccount, ...] = field(default_factory=tuple)
    paid_requests: int = 0


def discovery_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """Start and exclusive End of the period members must have costs in."""
    return first_of_month(today, DISCOVERY_MONTHS_BACK), today + dt.timedelta(days=1)


def discover_linked_accounts(
    call: Callable[..., dict[str, Any]], *, today: dt.date
) -> DiscoveredMembers:
    """Page through LINKED_ACCOUNT values (``ce.get_dimension_values``).

    Raises:
        ProviderAccessDeniedError: the credentials lack ``ce:GetDimensionValues``.
        ProviderThrottledError: still throttled after botocore's retries.
        ProviderDataError: a page does not have the documented shape, or the tokens loop.
    """
    start, end = discovery_period(today)
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Dimension": "LINKED_ACCOUNT",
        "Context": "COST_AND_USAGE",
    }
    accounts: dict[str, LinkedAccount] = {}
    paid = 0
    token: str | None = None
    seen: set[str] = set()
    try:
        while True:
            page = call(**request, **({"NextPageToken": token} if token else {}))
            paid += 1
            values = page.get("DimensionValues")
            if not isinstance(values, list):
                raise ProviderDataError(
                    "Cost Explorer's GetDimensionValues answer has no DimensionValues list. "
                    "Retry later; report it if it persists."
                )
            for value in values:
                number = str(value.get("Value", ""))
                if len(number) == 12 and number.isdigit():
                    name = str((value.get("Attributes") or {}).get("description") or number)
                    accounts[number] = LinkedAccount(number, name)
            token = page.get("NextPageToken") or None
            if token is None:
                break
            if token in seen or paid >= _MAX_PAGES:
                raise ProviderDataError(
                    "Cost Explorer's GetDimensionValues kept returning pages; stopped to avoid "
                    "an endless (and billed) loop. Retry later."
                )
            seen.add(token)
    except ClientError as error:
        translated = translate_client_error(error)
        if isinstance(translated, ProviderAccessDeniedError):
            raise ProviderAccessDeniedError(
                "AWS denied GetDimensionValues: a management account needs "
                "ce:GetDimensionValues to list its members. Grant it, or register the account "
                "without --management-account."
            ) from None
        raise translated from None
    except BotoCoreError as error:
        unreachable = ProviderError(
            f"Could not list the organisation's accounts ({type(error).__name__}). Check "
            "network access to Cost Explorer and retry."
        )
        unreachable.permanent = False
        raise unreachable from None
    return DiscoveredMembers(
        accounts=tuple(sorted(accounts.values(), key=lambda a: a.number)), paid_requests=paid
    )
