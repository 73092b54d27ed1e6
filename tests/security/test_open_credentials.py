"""open_credentials: the one place stored credentials are decrypted and deserialised."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from finops_pipeline.errors import CredentialError
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing, encrypt
from finops_pipeline.security.credentials import (
    Secret,
    open_credentials,
    seal_credentials,
    serialize_credentials,
)
from finops_pipeline.security.redaction import GLOBAL_REDACTOR, MASK


@dataclass(frozen=True)
class StoredAccount:
    credentials_encrypted: bytes
    encryption_context: EncryptionContext


def _ring() -> KeyRing:
    return KeyRing.from_environment({"ENCRYPTION_KEY": os.urandom(32).hex()})


def test_opens_the_stored_credentials_and_registers_their_secrets_for_redaction() -> None:
    ring = _ring()
    secret = "open-credentials-" + os.urandom(8).hex()
    credentials = AwsAccessKeyCredentials("AKIAEXAMPLEEXAMPLE00", Secret(secret))
    context = EncryptionContext("t1", "00000000-0000-0000-0000-000000000001", "aws_access_key")
    account = StoredAccount(encrypt(serialize_credentials(credentials), ring, context), context)

    assert open_credentials(account, ring) == credentials
    assert GLOBAL_REDACTOR.redact(f"boto said {secret}") == f"boto said {MASK}"


def test_another_key_or_another_row_is_a_typed_error() -> None:
    ring = _ring()
    credentials = AwsAccessKeyCredentials("AKIAEXAMPLEEXAMPLE00", Secret("s" * 40))
    context = EncryptionContext("t1", "00000000-0000-0000-0000-000000000001", "aws_access_key")
    blob = encrypt(serialize_credentials(credentials), ring, context)
    other_row = EncryptionContext("t2", "00000000-0000-0000-0000-000000000001", "aws_access_key")
    with pytest.raises(CredentialError):
        open_credentials(StoredAccount(blob, context), _ring())
    with pytest.raises(CredentialError):
        open_credentials(StoredAccount(blob, other_row), ring)


def test_seal_is_what_open_reverses_and_binds_the_blob_to_its_row() -> None:
    ring = _ring()
    secret = "seal-credentials-" + os.urandom(8).hex()
    credentials = AwsAccessKeyCredentials("AKIAEXAMPLEEXAMPLE00", Secret(secret))
    context = EncryptionContext("t1", "00000000-0000-0000-0000-000000000001", "aws_access_key")
    blob = seal_credentials(credentials, ring, context)

    assert secret.encode() not in blob
    assert open_credentials(StoredAccount(blob, context), ring) == credentials
    other_row = EncryptionContext("t1", "00000000-0000-0000-0000-000000000002", "aws_access_key")
    with pytest.raises(CredentialError):
        open_credentials(StoredAccount(blob, other_row), ring)
