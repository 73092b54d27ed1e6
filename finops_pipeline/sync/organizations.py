"""Discovering management accounts' members: ask the payer's Cost Explorer, update the rows.

Each discovery is paid (one request per page of LINKED_ACCOUNT values), counted against the
tenant's budget before it is made, and recorded under the payer. The sensor in
``finops_pipeline.sensors.organizations`` runs it once a day per payer; ``finops accounts
discover`` runs it now.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from finops_pipeline.db.accounts import CloudAccount, get_accounts
from finops_pipeline.db.organizations import MemberChanges, sync_members
from finops_pipeline.db.request_budget import record_requests, reserve_requests
from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.aws.organizations import DiscoveredMembers
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Credentials

logger = logging.getLogger(__name__)

#: How often a payer's members are listed again (each listing is paid).
DISCOVERY_INTERVAL = dt.timedelta(hours=24)


class MemberLister(Protocol):
    """Lists a management account's organisation (``AwsCostExplorerResource``)."""

    def discover_members(
        self, account: CloudAccount, credentials: Credentials, *, today: dt.date
    ) -> DiscoveredMembers: ...


@dataclass(frozen=True)
class DiscoveryOutcome:
    """One payer's discovery: what changed and what it cost, or why it failed."""

    payer_id: str
    tenant_id: str
    paid_requests: int
    changes: MemberChanges | None = None
    error: str | None = None

    @property
    def line(self) -> str:
        if self.error is not None:
            return f"payer {self.payer_id}: FAILED: {self.error}"
        assert self.changes is not None
        return f"payer {self.payer_id}: {self.changes.summary}; {self.paid_requests} paid requests"


def discover_members(
    connection: psycopg.Connection,
    payer_ids: Sequence[str],
    *,
    decrypt: Callable[[CloudAccount], Credentials],
    ring: KeyRing,
    lister: MemberLister,
    today: dt.date,
) -> list[DiscoveryOutcome]:
    """List each payer's members and update their rows; one payer's failure stops no other."""
    outcomes = []
    for payer in get_accounts(connection, list(payer_ids)):
        reserved = 0
        try:
            credentials = decrypt(payer)
            # At least one paid page; refused before asking AWS when the budget is spent.
            reserve_requests(
                connection,
                payer.tenant_id,
                {(payer.id, payer.provider): 1},
                purpose=f"listing the members of payer {payer.id}",
            )
            reserved = 1
            discovered = lister.discover_members(payer, credentials, today=today)
            record_requests(
                connection,
                payer.tenant_id,
                payer.id,
                payer.provider,
                discovered.paid_requests - reserved,
            )
            reserved = 0
            changes = sync_members(
                connection,
                ring,
                payer,
                credentials,
                [(member.number, member.name) for member in discovered.accounts],
            )
        except FinopsError as error:
            if reserved:
                # A failed request is free: give the reservation back.
                record_requests(connection, payer.tenant_id, payer.id, payer.provider, -reserved)
            logger.error("Discovering the members of payer %s failed: %s", payer.id, error)
            outcomes.append(
                DiscoveryOutcome(
                    payer.id, payer.tenant_id, 0, error=f"{type(error).__name__}: {error}"
                )
            )
            continue
        logger.info("Payer %s: %s", payer.id, changes.summary)
        outcomes.append(
            DiscoveryOutcome(payer.id, payer.tenant_id, discovered.paid_requests, changes)
        )
    return outcomes
