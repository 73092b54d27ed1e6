"""Management (payer) accounts and the member accounts discovered in their organisation.

Each member the payer's Cost Explorer lists becomes a ``cloud_accounts`` row of its own, linked
by ``payer_account_id`` and holding a copy of the payer's credentials, encrypted and bound to
the member's own row (so key rotation and decryption treat it like any account). Its fetches
filter on its LINKED_ACCOUNT, so ``cost_data``'s key stays the same.

A number the tenant registered with its own credentials is left alone: it is collected once,
through its own credentials, never again through the payer. A member the organisation no
longer lists is disabled (``member_gone_at`` set), never deleted; it is enabled again if it
comes back. Members a person disabled stay disabled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from finops_pipeline.db.accounts import CloudAccount, get_account, register_account
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing, encrypt
from finops_pipeline.security.credentials import (
    Credentials,
    credential_kind,
    serialize_credentials,
)


@dataclass
class MemberChanges:
    """What one discovery changed for a payer."""

    payer_id: str
    added: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    #: Numbers listed by the organisation that the tenant registered with their own
    #: credentials: collected through those, not through the payer.
    registered_separately: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.reactivated)} back, {len(self.disabled)} gone "
            f"(disabled), {self.unchanged} unchanged, {len(self.registered_separately)} "
            "registered with their own credentials"
        )


def management_accounts(
    connection: psycopg.Connection, *, due_before: dt.datetime | None = None
) -> list[str]:
    """Active payers, optionally only those not discovered since ``due_before``."""
    rows = connection.execute(
        """
        SELECT id::text FROM cloud_accounts
        WHERE management_account AND status = 'active'
          AND (%(due)s::timestamptz IS NULL OR members_discovered_at IS NULL
               OR members_discovered_at < %(due)s::timestamptz)
        ORDER BY created_at, id
        """,
        {"due": due_before},
    ).fetchall()
    return [row[0] for row in rows]


def set_management_account(
    connection: psycopg.Connection, account_id: str, management_account: bool
) -> None:
    """Mark (or unmark) a registered account as a payer whose members are discovered."""
    with connection.transaction():
        connection.execute(
            "UPDATE cloud_accounts SET management_account = %s, updated_at = now() WHERE id = %s",
            (management_account, account_id),
        )


def sync_members(
    connection: psycopg.Connection,
    ring: KeyRing,
    payer: CloudAccount,
    credentials: Credentials,
    members: Sequence[tuple[str, str]],
) -> MemberChanges:
    """Make the payer's member rows match ``members`` ((number, name) pairs), in one
    transaction; the payer's own number is skipped.
    """
    changes = MemberChanges(payer_id=payer.id)
    listed = {number: name for number, name in members if number != payer.provider_account_id}
    kind = credential_kind(credentials)
    payload = serialize_credentials(credentials)
    with connection.transaction():
        existing = {
            row[1]: row
            for row in connection.execute(
                """
                SELECT id::text, provider_account_id, payer_account_id::text, status,
                       member_gone_at
                FROM cloud_accounts
                WHERE (tenant_id = %s AND provider = %s AND provider_account_id = ANY(%s))
                   OR payer_account_id = %s
                """,
                (payer.tenant_id, payer.provider, list(listed), payer.id),
            ).fetchall()
        }
        for number, name in sorted(listed.items()):
            row = existing.get(number)
            if row is None:
                changes.added.append(
                    register_account(
                        connection,
                        ring,
                        tenant_id=payer.tenant_id,
                        name=name,
                        provider=payer.provider,
                        provider_account_id=number,
                        credentials=credentials,
                        endpoint_url=payer.endpoint_url,
                        payer_account_id=payer.id,
                    )
                )
                continue
            member_id, _, payer_id, status, gone_at = row
            if payer_id != payer.id:
                changes.registered_separately.append(number)
                continue
            # The payer's credentials may have changed since: re-copy them, bound to the member.
            blob = encrypt(
                payload,
                ring,
                EncryptionContext(
                    tenant_id=payer.tenant_id, account_id=member_id, credential_kind=kind
                ),
            )
            comes_back = gone_at is not None
            connection.execute(
                """
                UPDATE cloud_accounts
                SET credentials_encrypted = %s, credential_kind = %s, endpoint_url = %s,
                    status = CASE WHEN member_gone_at IS NOT NULL THEN 'active' ELSE status END,
                    member_gone_at = NULL, updated_at = now()
                WHERE id = %s
                """,
                (blob, kind, payer.endpoint_url, member_id),
            )
            if comes_back and status == "disabled":
                changes.reactivated.append(member_id)
            else:
                changes.unchanged += 1
        for number, (member_id, _, payer_id, _status, gone_at) in existing.items():
            if payer_id == payer.id and number not in listed and gone_at is None:
                connection.execute(
                    "UPDATE cloud_accounts SET status = 'disabled', member_gone_at = now(), "
                    "updated_at = now() WHERE id = %s",
                    (member_id,),
                )
                changes.disabled.append(member_id)
        connection.execute(
            "UPDATE cloud_accounts SET members_discovered_at = now() WHERE id = %s", (payer.id,)
        )
    return changes


def payers_of(connection: psycopg.Connection, account_ids: Sequence[str]) -> dict[str, str]:
    """Account id -> the payer whose credentials it is collected with (a payer: itself)."""
    rows = connection.execute(
        """
        SELECT id::text, COALESCE(payer_account_id, id)::text FROM cloud_accounts
        WHERE id::text = ANY(%s) AND (management_account OR payer_account_id IS NOT NULL)
        """,
        (list(account_ids),),
    ).fetchall()
    return dict(rows)


def find_member_id(
    connection: psycopg.Connection, tenant_id: str, provider: str, provider_account_id: str
) -> str | None:
    """The id of the tenant's discovered member with this number, if there is one."""
    row = connection.execute(
        "SELECT id::text FROM cloud_accounts WHERE tenant_id = %s AND provider = %s "
        "AND provider_account_id = %s AND payer_account_id IS NOT NULL",
        (tenant_id, provider, provider_account_id),
    ).fetchone()
    return None if row is None else str(row[0])


def take_over_member(
    connection: psycopg.Connection,
    ring: KeyRing,
    account_id: str,
    credentials: Credentials,
    *,
    name: str,
    endpoint_url: str | None,
    management_account: bool,
) -> None:
    """Give a discovered member its own credentials and unlink it from its payer."""
    account = get_account(connection, account_id)
    kind = credential_kind(credentials)
    blob = encrypt(
        serialize_credentials(credentials),
        ring,
        EncryptionContext(tenant_id=account.tenant_id, account_id=account.id, credential_kind=kind),
    )
    with connection.transaction():
        connection.execute(
            """
            UPDATE cloud_accounts
            SET credentials_encrypted = %s, credential_kind = %s, name = %s, endpoint_url = %s,
                payer_account_id = NULL, member_gone_at = NULL, management_account = %s,
                status = 'active', updated_at = now()
            WHERE id = %s
            """,
            (blob, kind, name, endpoint_url, management_account, account.id),
        )


def member_accounts(
    connection: psycopg.Connection, payer_ids: Sequence[str]
) -> list[tuple[str, str, str, str]]:
    """Active members of these payers: (id, tenant, name, number), by number."""
    rows = connection.execute(
        "SELECT id::text, tenant_id, name, provider_account_id FROM cloud_accounts "
        "WHERE payer_account_id::text = ANY(%s) AND status = 'active' "
        "ORDER BY provider_account_id",
        (list(payer_ids),),
    ).fetchall()
    return [(str(a), str(t), str(n), str(p)) for a, t, n, p in rows]
