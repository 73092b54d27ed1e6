"""``finops keys rotate``: re-encrypt every stored credential under the current key.

Run it after moving the old key to ``ENCRYPTION_KEYS_PREVIOUS`` and setting a new
``ENCRYPTION_KEY``. Once it reports no failures, the old key can be dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from finops_pipeline.db.accounts import (
    StoredCredentials,
    lock_for_key_rotation,
    replace_credentials_batch,
    stored_credentials_batches,
)
from finops_pipeline.errors import CredentialError, DatabaseError
from finops_pipeline.security.ciphertext import (
    KeyRing,
    decrypt,
    encrypt,
    needs_reencryption,
)

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class RotationFailure:
    """One credential that could not be re-encrypted; the message is safe to print."""

    account_id: str
    error_type: str
    message: str


@dataclass
class RotationReport:
    """The counts ``finops keys rotate`` prints."""

    reencrypted: int = 0
    already_current: int = 0
    failures: list[RotationFailure] = field(default_factory=list)
    current_key_id: str = ""
    dry_run: bool = False

    @property
    def failed(self) -> int:
        """How many credentials could not be re-encrypted."""
        return len(self.failures)

    @property
    def ok(self) -> bool:
        """No failures."""
        return not self.failures

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "reencrypted": self.reencrypted,
            "already_current": self.already_current,
            "failed": self.failed,
            "current_key_id": self.current_key_id,
            "dry_run": self.dry_run,
            "failures": [
                {"account_id": f.account_id, "error_type": f.error_type, "message": f.message}
                for f in self.failures
            ],
        }


def rotate_credentials(
    connection: psycopg.Connection,
    ring: KeyRing,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> RotationReport:
    """Re-encrypt every credential not under the ring's current key, in one transaction.

    Rows are read and updated ``batch_size`` at a time (keyset order by id), locked until the
    commit so an account edited meanwhile is not overwritten with a stale blob. Blobs already
    under the current key are still decrypted, so a tampered or unreadable one is reported
    rather than counted as current. A row that fails keeps its old blob; the others are
    re-encrypted and committed, so a second run re-encrypts nothing and reports only the
    failures again.

    Args:
        connection: An autocommit connection as a role that sees every tenant.
        ring: The key ring: the new current key plus the previous keys.
        batch_size: Rows per read and per update.
        dry_run: Count only; write nothing.

    Returns:
        The counts, and each failure with its account id and a safe message.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport(current_key_id=key_id_hex(ring), dry_run=dry_run)
    try:
        _rotate_in_one_transaction(connection, ring, report, batch_size, dry_run)
    except psycopg.Error as error:
        raise DatabaseError(
            f"Key rotation failed in the database ({type(error).__name__}); it runs as one "
            "transaction, so no credential was changed. Fix the cause and run it again."
        ) from None
    logger.info(
        "Key rotation: %d re-encrypted, %d already current, %d failed",
        report.reencrypted,
        report.already_current,
        report.failed,
    )
    return report


def _rotate_in_one_transaction(
    connection: psycopg.Connection,
    ring: KeyRing,
    report: RotationReport,
    batch_size: int,
    dry_run: bool,
) -> None:
    with connection.transaction():
        lock_for_key_rotation(connection)
        for batch in stored_credentials_batches(connection, batch_size):
            updates = _reencrypt_batch(batch, ring, report)
            if updates and not dry_run:
                replace_credentials_batch(connection, updates)


def _reencrypt_batch(
    batch: list[StoredCredentials], ring: KeyRing, report: RotationReport
) -> list[tuple[str, bytes]]:
    updates: list[tuple[str, bytes]] = []
    for stored in batch:
        context = stored.encryption_context
        try:
            plaintext = decrypt(stored.credentials_encrypted, ring, context)
        except CredentialError as error:
            report.failures.append(
                RotationFailure(stored.account_id, type(error).__name__, str(error))
            )
            continue
        if not needs_reencryption(stored.credentials_encrypted, ring):
            report.already_current += 1
            continue
        updates.append((stored.account_id, encrypt(plaintext, ring, context)))
        report.reencrypted += 1
    return updates


def key_id_hex(ring: KeyRing) -> str:
    """The current key's id in hex (safe to print: it is a hash, not the key)."""
    return ring.current_key_id.hex()
