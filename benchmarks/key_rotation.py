"""Measure `finops keys rotate` on N stored credentials against a real Postgres.

Usage: python benchmarks/key_rotation.py postgresql://postgres@127.0.0.1:5432/test 10000
Creates a scratch database, registers N accounts under an old key, rotates twice, drops it.
"""

from __future__ import annotations

import sys
import time
import uuid

import psycopg

from finops_pipeline.db.engine import create_finops_engine, psycopg_connection
from finops_pipeline.db.urls import to_libpq_url, with_database
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing, encrypt, generate_key
from finops_pipeline.security.credentials import Secret, serialize_credentials
from finops_pipeline.security.rotation import rotate_credentials


def main(server_url: str, count: int) -> None:
    name = f"finops_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = create_finops_engine(with_database(server_url, name), migrate=True)
    try:
        old_key, new_key = generate_key(), generate_key()
        old = KeyRing.from_strings(old_key)
        with psycopg_connection(engine) as connection:
            rows = []
            for index in range(count):
                account_id = str(uuid.uuid4())
                credentials = AwsAccessKeyCredentials(
                    access_key_id="AKIAEXAMPLEKEY000001",
                    secret_access_key=Secret(f"secret-{index:08d}-xxxxxxxxxxxxxxxxxxxxxxxx"),
                )
                context = EncryptionContext(f"tenant-{index % 50}", account_id, credentials.KIND)
                blob = encrypt(serialize_credentials(credentials), old, context)
                rows.append((account_id, context.tenant_id, f"a{index}", f"{index:012d}", blob))
            with (
                connection.cursor() as cursor,
                cursor.copy(
                    "COPY cloud_accounts (id, tenant_id, name, provider_account_id, "
                    "credentials_encrypted, provider, credential_kind) FROM STDIN"
                ) as copy,
            ):
                for row in rows:
                    copy.write_row((*row, "aws", "aws_access_key"))
            ring = KeyRing.from_strings(new_key, [old_key])
            for label in ("first run", "second run"):
                started = time.perf_counter()
                report = rotate_credentials(connection, ring)
                elapsed = time.perf_counter() - started
                print(
                    f"{label}: {count} credentials in {elapsed:.2f} s "
                    f"({count / elapsed:,.0f}/s): re-encrypted {report.reencrypted}, "
                    f"already current {report.already_current}, failed {report.failed}"
                )
    finally:
        engine.dispose()
        with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
