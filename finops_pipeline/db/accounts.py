"""Reading and writing ``cloud_accounts`` rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from finops_pipeline.constants import PROVIDER_AWS, PROVIDER_AZURE, PROVIDER_GCP
from finops_pipeline.db.tenants import check_tenant_id
from finops_pipeline.errors import AccountNotFoundError, ConfigurationError
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing
from finops_pipeline.security.credentials import Credentials, credential_kind, seal_credentials

#: The providers ``cloud_accounts.provider``'s CHECK constraint accepts (migration 0001); which
#: of them can be onboarded is the provider registry's business.
SUPPORTED_PROVIDERS = (PROVIDER_AWS, PROVIDER_AZURE, PROVIDER_GCP)


@dataclass(frozen=True)
class CloudAccount:
    """One row of ``cloud_accounts``; ``credentials_encrypted`` stays encrypted here."""

    id: str
    tenant_id: str
    name: str
    provider: str
    provider_account_id: str
    credential_kind: str
    credentials_encrypted: bytes
    endpoint_url: str | None
    status: str
    created_at: dt.datetime
    last_sync_at: dt.datetime | None = None
    last_sync_status: str | None = None
    last_sync_error: str | None = None
    last_sync_rows: int | None = None
    last_sync_run_id: str | None = None

    @property
    def encryption_context(self) -> EncryptionContext:
        return EncryptionContext(
            tenant_id=self.tenant_id, account_id=self.id, credential_kind=self.credential_kind
        )

    def __repr__(self) -> str:
        return (
            f"CloudAccount(id={self.id!r}, tenant_id={self.tenant_id!r}, name={self.name!r}, "
            f"provider={self.provider!r}, status={self.status!r})"
        )


_ACCOUNT_COLUMNS = """
    id::text AS id, tenant_id, name, provider, provider_account_id, credential_kind,
    credentials_encrypted, endpoint_url, status, created_at, last_sync_at, last_sync_status,
    last_sync_error, last_sync_rows, last_sync_run_id
"""


def _to_account(row: dict[str, object]) -> CloudAccount:
    row = dict(row)
    row["credentials_encrypted"] = bytes(row["credentials_encrypted"])  # type: ignore[arg-type]
    return CloudAccount(**row)  # type: ignore[arg-type]


def register_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    *,
    tenant_id: str,
    name: str,
    provider: str,
    provider_account_id: str,
    credentials: Credentials,
    endpoint_url: str | None = None,
    account_id: str | None = None,
) -> str:
    """Encrypt the credentials bound to their row and insert the account; returns its id.

    The id is generated before encrypting so the ciphertext can be bound to it: copying the
    blob onto another row then fails to decrypt.
    """
    if provider not in SUPPORTED_PROVIDERS:
        raise ConfigurationError(
            f"Unknown provider {provider!r}; use one of {', '.join(SUPPORTED_PROVIDERS)}."
        )
    check_tenant_id(tenant_id)
    account_id = account_id or str(uuid.uuid4())
    kind = credential_kind(credentials)
    context = EncryptionContext(tenant_id=tenant_id, account_id=account_id, credential_kind=kind)
    blob = seal_credentials(credentials, ring, context)
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cloud_accounts (id, tenant_id, name, provider, provider_account_id,
                                        credential_kind, credentials_encrypted, endpoint_url)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (account_id, tenant_id, name, provider, provider_account_id, kind, blob, endpoint_url),
        )
    return account_id


def get_account(connection: psycopg.Connection, account_id: str) -> CloudAccount:
    """Load one account, or raise :class:`AccountNotFoundError`."""
    try:
        uuid.UUID(account_id)
    except ValueError:
        raise AccountNotFoundError(
            f"{account_id!r} is not an account id; `finops accounts list` shows them."
        ) from None
    with connection.cursor(row_factory=dict_row) as cursor:
        cursor.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM cloud_accounts WHERE id = %s", (account_id,)
        )
        row = cursor.fetchone()
    if row is None:
        raise AccountNotFoundError(
            f"No cloud account has id {account_id}; `finops accounts list` shows the ids."
        )
    return _to_account(row)


def get_accounts(connection: psycopg.Connection, account_ids: Sequence[str]) -> list[CloudAccount]:
    """Load several accounts by id in one query, in the order given; unknown ids raise."""
    found: dict[str, CloudAccount] = {}
    with connection.cursor(row_factory=dict_row) as cursor:
        cursor.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM cloud_accounts WHERE id::text = ANY(%s)",
            (list(account_ids),),
        )
        for row in cursor.fetchall():
            account = _to_account(row)
            found[account.id] = account
    missing = [account_id for account_id in account_ids if account_id not in found]
    if missing:
        raise AccountNotFoundError(
            f"No cloud account has id {', '.join(missing)}; it may have been removed. "
            "The account sensor drops removed accounts from the partitions."
        )
    return [found[account_id] for account_id in account_ids]


def list_accounts(
    connection: psycopg.Connection, *, active_only: bool = False
) -> list[CloudAccount]:
    """All accounts, oldest first."""
    where = "WHERE status = 'active'" if active_only else ""
    with connection.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM cloud_accounts {where} ORDER BY created_at")
        return [_to_account(row) for row in cursor.fetchall()]


def find_account_id(
    connection: psycopg.Connection, tenant_id: str, provider: str, provider_account_id: str
) -> str | None:
    """The id of the tenant's account with this natural key, or None."""
    row = connection.execute(
        "SELECT id::text FROM cloud_accounts "
        "WHERE tenant_id = %s AND provider = %s AND provider_account_id = %s",
        (tenant_id, provider, provider_account_id),
    ).fetchone()
    return str(row[0]) if row else None


def set_account_status(connection: psycopg.Connection, account_id: str, status: str) -> None:
    """Set ``cloud_accounts.status`` (``active`` or ``disabled``) of an existing account."""
    with connection.transaction():
        connection.execute(
            "UPDATE cloud_accounts SET status = %s, updated_at = now() WHERE id = %s",
            (status, account_id),
        )


def replace_credentials(connection: psycopg.Connection, account_id: str, blob: bytes) -> None:
    """Store a new ciphertext for an account (encrypted under its own encryption context)."""
    with connection.transaction():
        connection.execute(
            "UPDATE cloud_accounts SET credentials_encrypted = %s, updated_at = now() "
            "WHERE id = %s",
            (blob, account_id),
        )


@dataclass(frozen=True)
class RemovedAccount:
    """What removing an account deleted."""

    account_id: str
    cost_rows_deleted: int
    sync_runs_deleted: int


def delete_account(
    connection: psycopg.Connection, account_id: str, *, purge: bool = False
) -> RemovedAccount:
    """Delete the account row (and its credentials); with ``purge`` also its ``cost_data``,
    ``account_sync_runs``, ``cost_recommendations`` and ``cost_anomalies`` rows. One
    transaction."""
    cost_rows = sync_rows = 0
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM cloud_accounts WHERE id = %s", (account_id,))
        if purge:
            cursor.execute("DELETE FROM cost_data WHERE cloud_account_id = %s", (account_id,))
            cost_rows = cursor.rowcount
            cursor.execute(
                "DELETE FROM account_sync_runs WHERE cloud_account_id = %s", (account_id,)
            )
            sync_rows = cursor.rowcount
            for table in ("cost_recommendations", "cost_anomalies"):
                cursor.execute(f"DELETE FROM {table} WHERE cloud_account_id = %s", (account_id,))
    return RemovedAccount(account_id, cost_rows, sync_rows)


# --- key rotation: every stored ciphertext, re-encrypted in keyset batches ------------------

# Two rotations at once would both succeed, but the counts would lie; serialise them.
_ROTATION_LOCK_KEY = 0x46494E4B4559  # "FINKEY"
_BEFORE_EVERY_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class StoredCredentials:
    """One account's ciphertext and what it is bound to (a row read for re-encryption)."""

    account_id: str
    tenant_id: str
    credential_kind: str
    credentials_encrypted: bytes

    @property
    def encryption_context(self) -> EncryptionContext:
        return EncryptionContext(
            tenant_id=self.tenant_id,
            account_id=self.account_id,
            credential_kind=self.credential_kind,
        )


def lock_for_key_rotation(connection: psycopg.Connection) -> None:
    """Take the transaction-scoped lock that serialises key rotations (call in a transaction)."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (_ROTATION_LOCK_KEY,))


def stored_credentials_batches(
    connection: psycopg.Connection, batch_size: int
) -> Iterator[list[StoredCredentials]]:
    """Every account's ciphertext, ``batch_size`` rows at a time in id order (keyset paging).

    Rows stay locked (``FOR UPDATE``) until the caller's transaction ends, so an account edited
    meanwhile is not overwritten with a stale blob. Call inside a transaction.
    """
    last_id = _BEFORE_EVERY_ID
    while True:
        rows = connection.execute(
            """
            SELECT id::text, tenant_id, credential_kind, credentials_encrypted
            FROM cloud_accounts WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE
            """,
            (last_id, batch_size),
        ).fetchall()
        if not rows:
            return
        last_id = rows[-1][0]
        yield [StoredCredentials(row[0], row[1], row[2], bytes(row[3])) for row in rows]


def replace_credentials_batch(
    connection: psycopg.Connection, updates: Sequence[tuple[str, bytes]]
) -> None:
    """Store new ciphertexts, given as ``(account_id, blob)`` pairs, in the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE cloud_accounts SET credentials_encrypted = %s, updated_at = now() "
            "WHERE id = %s",
            [(blob, account_id) for account_id, blob in updates],
        )
