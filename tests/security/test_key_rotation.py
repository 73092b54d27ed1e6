"""Key rotation on real Postgres: counts, idempotence, failures, batches, one transaction."""

from __future__ import annotations

import psycopg
import pytest

from finops_pipeline.db.accounts import get_account, list_accounts, register_account
from finops_pipeline.errors import DatabaseError, WrongKeyError
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing, decrypt, generate_key, needs_reencryption
from finops_pipeline.security.credentials import Secret, open_credentials
from finops_pipeline.security.rotation import rotate_credentials

pytestmark = pytest.mark.integration


def add_accounts(connection: psycopg.Connection, ring: KeyRing, count: int) -> list[str]:
    return [
        register_account(
            connection,
            ring,
            tenant_id=f"tenant-{index % 2}",
            name=f"account {index}",
            provider="aws",
            provider_account_id=f"{100000000000 + index}",
            credentials=AwsAccessKeyCredentials(
                access_key_id="AKIAEXAMPLEKEY000001",
                secret_access_key=Secret(f"secret-value-{index:04d}"),
            ),
        )
        for index in range(count)
    ]


def blobs(connection: psycopg.Connection) -> dict[str, bytes]:
    return {
        row[0]: bytes(row[1])
        for row in connection.execute(
            "SELECT id::text, credentials_encrypted FROM cloud_accounts"
        ).fetchall()
    }


@pytest.fixture
def old_key() -> str:
    return generate_key()


@pytest.fixture
def new_key() -> str:
    return generate_key()


@pytest.fixture
def rotated_ring(old_key: str, new_key: str) -> KeyRing:
    return KeyRing.from_strings(new_key, [old_key])


def test_rotation_reencrypts_everything_in_batches_and_a_second_run_changes_nothing(
    connection: psycopg.Connection, old_key: str, new_key: str, rotated_ring: KeyRing
) -> None:
    ids = add_accounts(connection, KeyRing.from_strings(old_key), 5)
    report = rotate_credentials(connection, rotated_ring, batch_size=2)
    assert (report.reencrypted, report.already_current, report.failed) == (5, 0, 0)

    # The old key can now be dropped: the new key alone decrypts everything.
    new_only = KeyRing.from_strings(new_key)
    for index, account_id in enumerate(ids):
        account = get_account(connection, account_id)
        assert not needs_reencryption(account.credentials_encrypted, rotated_ring)
        secret = open_credentials(account, new_only).secret_access_key
        assert secret.reveal() == f"secret-value-{index:04d}"
    with pytest.raises(WrongKeyError):
        account = get_account(connection, ids[0])
        decrypt(
            account.credentials_encrypted,
            KeyRing.from_strings(old_key),
            account.encryption_context,
        )

    before = blobs(connection)
    again = rotate_credentials(connection, rotated_ring, batch_size=2)
    assert (again.reencrypted, again.already_current, again.failed) == (0, 5, 0)
    assert blobs(connection) == before  # nothing rewritten


def test_a_tampered_blob_is_reported_and_left_alone_while_the_rest_rotate(
    connection: psycopg.Connection, old_key: str, rotated_ring: KeyRing
) -> None:
    ids = add_accounts(connection, KeyRing.from_strings(old_key), 3)
    tampered = bytearray(blobs(connection)[ids[1]])
    tampered[-1] ^= 0x01
    connection.execute(
        "UPDATE cloud_accounts SET credentials_encrypted = %s WHERE id = %s",
        (bytes(tampered), ids[1]),
    )
    report = rotate_credentials(connection, rotated_ring)
    assert (report.reencrypted, report.already_current, report.failed) == (2, 0, 1)
    (failure,) = report.failures
    assert failure.account_id == ids[1]
    assert failure.error_type == "TamperedCiphertextError"
    assert blobs(connection)[ids[1]] == bytes(tampered)
    assert old_key not in str(report.as_dict()) and old_key not in failure.message
    # Blobs already under the current key are decrypted too, so a second run still reports it.
    again = rotate_credentials(connection, rotated_ring)
    assert (again.reencrypted, again.already_current, again.failed) == (0, 2, 1)


def test_a_blob_under_an_unknown_key_fails_with_wrong_key(
    connection: psycopg.Connection, rotated_ring: KeyRing
) -> None:
    add_accounts(connection, KeyRing.from_strings(generate_key()), 2)
    report = rotate_credentials(connection, rotated_ring)
    assert report.failed == 2
    assert {f.error_type for f in report.failures} == {"WrongKeyError"}


def test_rotation_is_one_transaction(
    connection: psycopg.Connection, old_key: str, rotated_ring: KeyRing
) -> None:
    ids = add_accounts(connection, KeyRing.from_strings(old_key), 4)
    before = blobs(connection)
    # A real fault on the last batch's UPDATE: the earlier batches must roll back with it.
    last = sorted(ids)[-1]
    connection.execute(
        f"""
        CREATE FUNCTION fail_update() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN IF NEW.id = '{last}' THEN RAISE EXCEPTION 'disk full (simulated)'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER fail_update BEFORE UPDATE ON cloud_accounts
        FOR EACH ROW EXECUTE FUNCTION fail_update();
        """
    )
    with pytest.raises(DatabaseError, match="no credential was changed"):
        rotate_credentials(connection, rotated_ring, batch_size=1)
    assert blobs(connection) == before


def test_dry_run_counts_without_writing(
    connection: psycopg.Connection, old_key: str, rotated_ring: KeyRing
) -> None:
    add_accounts(connection, KeyRing.from_strings(old_key), 3)
    before = blobs(connection)
    report = rotate_credentials(connection, rotated_ring, dry_run=True)
    assert (report.reencrypted, report.failed, report.dry_run) == (3, 0, True)
    assert blobs(connection) == before
    assert len(list_accounts(connection)) == 3
