"""Tests for finops_pipeline.security.ciphertext: format, binding, rotation, key parsing, leak-free errors."""

from __future__ import annotations

import base64
import logging
import pickle
import struct
import warnings

import pytest

from finops_pipeline.errors import (
    ConfigurationError,
    CredentialError,
    MalformedKeyError,
    MissingKeyError,
    TamperedCiphertextError,
    UnknownCiphertextVersionError,
    WrongKeyError,
)
from finops_pipeline.security import ciphertext as crypto
from finops_pipeline.security.ciphertext import (
    EncryptionContext,
    KeyRing,
    WeakKeyWarning,
    decrypt,
    encrypt,
    generate_key,
    key_id,
    needs_reencryption,
    parse_key,
    reencrypt,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
KEY_C = bytes(range(64, 96))
PLAINTEXT = b'{"kind":"aws_role","external_id":"plaintext-marker-7f3a"}'
CONTEXT = EncryptionContext("tenant-1", "acct-123", "aws_access_key")

# Frozen known answer: key bytes(range(32)), the context below, nonce bytes(range(100, 112)).
KAT_KEY = bytes(range(32))
KAT_CONTEXT = EncryptionContext("tenant-1", "acct-123", "aws_access_key")
KAT_NONCE = bytes(range(100, 112))
KAT_PLAINTEXT = b'{"kind":"aws_role"}'
KAT_BLOB_HEX = (
    "01431f16d26465666768696a6b6c6d6e6f3339b50f178d74a41c03289b8517059127e07bd4ab5561a8d54639d2"
    "0c8467a97aed27"
)


def ring(current: bytes = KEY_A, *previous: bytes) -> KeyRing:
    return KeyRing(current, previous)


def assert_no_leak(exc: BaseException, *forbidden: bytes | str) -> None:
    """Assert that neither str() nor repr() of an error quotes any forbidden value."""
    rendered = f"{exc}\n{exc!r}"
    for value in forbidden:
        candidates = (
            [value.hex(), value.decode("latin-1"), repr(value)]
            if isinstance(value, bytes)
            else [value]
        )
        for candidate in candidates:
            if len(candidate) >= 6:
                assert candidate not in rendered


# --- format ----------------------------------------------------------------------------------


def test_round_trip() -> None:
    blob = encrypt(PLAINTEXT, ring(), CONTEXT)
    assert decrypt(blob, ring(), CONTEXT) == PLAINTEXT


def test_round_trip_empty_plaintext_and_memoryview_input() -> None:
    blob = encrypt(b"", ring(), CONTEXT)
    assert len(blob) == 1 + 4 + 12 + 16
    assert decrypt(memoryview(blob), ring(), CONTEXT) == b""
    assert decrypt(bytearray(blob), ring(), CONTEXT) == b""


def test_blob_layout() -> None:
    blob = encrypt(PLAINTEXT, ring(), CONTEXT)
    assert blob[0] == 1
    assert blob[1:5] == key_id(KEY_A)
    assert len(blob) == 1 + 4 + 12 + len(PLAINTEXT) + 16
    assert PLAINTEXT not in blob


def test_nonce_differs_between_encryptions() -> None:
    first = encrypt(PLAINTEXT, ring(), CONTEXT)
    second = encrypt(PLAINTEXT, ring(), CONTEXT)
    assert first[5:17] != second[5:17]
    assert first != second


def test_known_answer_encrypt_is_frozen() -> None:
    blob = crypto._encrypt_with_nonce(KAT_PLAINTEXT, KeyRing(KAT_KEY), KAT_CONTEXT, KAT_NONCE)
    assert blob.hex() == KAT_BLOB_HEX


def test_known_answer_encrypt_via_urandom_is_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto.os, "urandom", lambda n: KAT_NONCE[:n])
    assert encrypt(KAT_PLAINTEXT, KeyRing(KAT_KEY), KAT_CONTEXT).hex() == KAT_BLOB_HEX


def test_known_answer_decrypt_is_frozen() -> None:
    blob = bytes.fromhex(KAT_BLOB_HEX)
    assert decrypt(blob, KeyRing(KAT_KEY), KAT_CONTEXT) == KAT_PLAINTEXT


def test_known_answer_key_id_and_associated_data_are_frozen() -> None:
    assert key_id(KAT_KEY).hex() == "431f16d2"
    assert KAT_CONTEXT.associated_data() == (
        b"finops-ctx:v1"
        + struct.pack(">I", 8)
        + b"tenant-1"
        + struct.pack(">I", 8)
        + b"acct-123"
        + struct.pack(">I", 14)
        + b"aws_access_key"
    )


# --- tampering -------------------------------------------------------------------------------


def _expected_error(index: int) -> type[CredentialError]:
    if index == 0:
        return UnknownCiphertextVersionError
    if 1 <= index <= 4:
        return WrongKeyError
    return TamperedCiphertextError


def test_flipping_any_single_byte_raises_the_typed_error_for_its_region() -> None:
    keys = ring()
    blob = encrypt(PLAINTEXT, keys, CONTEXT)
    for index in range(len(blob)):
        for mask in (0x01, 0x80):
            altered = bytearray(blob)
            altered[index] ^= mask
            expected = _expected_error(index)
            with pytest.raises(CredentialError) as info:
                decrypt(bytes(altered), keys, CONTEXT)
            assert type(info.value) is expected, (index, mask, type(info.value))
            assert_no_leak(info.value, PLAINTEXT, blob, bytes(altered), KEY_A)


@pytest.mark.parametrize(
    ("region", "start", "stop"),
    [("nonce", 5, 17), ("ciphertext", 17, 17 + len(PLAINTEXT)), ("tag", -16, None)],
)
def test_flipping_nonce_ciphertext_or_tag_is_tampering(
    region: str, start: int, stop: int | None
) -> None:
    blob = encrypt(PLAINTEXT, ring(), CONTEXT)
    positions = range(len(blob))[slice(start, stop)]
    assert positions, region
    for index in positions:
        altered = bytearray(blob)
        altered[index] ^= 0xFF
        with pytest.raises(TamperedCiphertextError):
            decrypt(bytes(altered), ring(), CONTEXT)


def test_version_byte_message_names_version_and_upgrade() -> None:
    blob = bytearray(encrypt(PLAINTEXT, ring(), CONTEXT))
    blob[0] = 7
    with pytest.raises(UnknownCiphertextVersionError) as info:
        decrypt(bytes(blob), ring(), CONTEXT)
    assert "version 7" in str(info.value)
    assert "upgrade finops-pipeline" in str(info.value).lower()


def test_key_id_altered_with_previous_keys_in_ring_is_still_wrong_key() -> None:
    blob = bytearray(encrypt(PLAINTEXT, ring(KEY_A, KEY_B), CONTEXT))
    blob[1] ^= 0x01
    with pytest.raises(WrongKeyError):
        decrypt(bytes(blob), ring(KEY_A, KEY_B), CONTEXT)


def test_header_swapped_to_another_ring_key_is_tampering() -> None:
    keys = ring(KEY_A, KEY_B)
    blob = bytearray(encrypt(PLAINTEXT, keys, CONTEXT))
    blob[1:5] = key_id(KEY_B)
    with pytest.raises(TamperedCiphertextError):
        decrypt(bytes(blob), keys, CONTEXT)


@pytest.mark.parametrize("length", [0, 1, 5, 17, 32])
def test_empty_or_truncated_blob_is_rejected(length: int) -> None:
    blob = encrypt(PLAINTEXT, ring(), CONTEXT)[:length]
    with pytest.raises(TamperedCiphertextError) as info:
        decrypt(blob, ring(), CONTEXT)
    assert "re-enter" in str(info.value).lower()


def test_truncated_tail_is_tampering() -> None:
    blob = encrypt(PLAINTEXT, ring(), CONTEXT)
    with pytest.raises(TamperedCiphertextError):
        decrypt(blob[:-1], ring(), CONTEXT)
    with pytest.raises(TamperedCiphertextError):
        decrypt(blob + b"\x00", ring(), CONTEXT)


def test_tampering_error_has_no_chained_cause() -> None:
    blob = bytearray(encrypt(PLAINTEXT, ring(), CONTEXT))
    blob[-1] ^= 1
    with pytest.raises(TamperedCiphertextError) as info:
        decrypt(bytes(blob), ring(), CONTEXT)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ is True
    message = str(info.value)
    for phrase in ("altered", "another account", "tenant", "key is wrong", "Re-enter"):
        assert phrase in message


# --- context binding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        EncryptionContext("tenant-1", "acct-999", "aws_access_key"),
        EncryptionContext("tenant-2", "acct-123", "aws_access_key"),
        EncryptionContext("tenant-1", "acct-123", "aws_role"),
    ],
    ids=["other-account", "other-tenant", "other-kind"],
)
def test_blob_is_bound_to_its_context(other: EncryptionContext) -> None:
    blob = encrypt(PLAINTEXT, ring(), CONTEXT)
    with pytest.raises(TamperedCiphertextError):
        decrypt(blob, ring(), other)


def test_associated_data_is_unambiguous() -> None:
    first = EncryptionContext("ab", "c", "k").associated_data()
    second = EncryptionContext("a", "bc", "k").associated_data()
    assert first != second
    blob = encrypt(PLAINTEXT, ring(), EncryptionContext("ab", "c", "k"))
    with pytest.raises(TamperedCiphertextError):
        decrypt(blob, ring(), EncryptionContext("a", "bc", "k"))


def test_context_rejects_non_string_fields() -> None:
    with pytest.raises(TypeError):
        EncryptionContext("tenant", 123, "aws_role")  # type: ignore[arg-type]


# --- rotation --------------------------------------------------------------------------------


def test_previous_key_decrypts_and_reencrypt_moves_blob_to_current_key() -> None:
    old_blob = encrypt(PLAINTEXT, ring(KEY_A), CONTEXT)
    rotated = ring(KEY_B, KEY_A)
    assert needs_reencryption(old_blob, rotated) is True
    assert decrypt(old_blob, rotated, CONTEXT) == PLAINTEXT

    new_blob = reencrypt(old_blob, rotated, CONTEXT)
    assert new_blob[1:5] == key_id(KEY_B) == rotated.current_key_id
    assert needs_reencryption(new_blob, rotated) is False
    assert decrypt(new_blob, rotated, CONTEXT) == PLAINTEXT
    assert decrypt(new_blob, ring(KEY_B), CONTEXT) == PLAINTEXT
    with pytest.raises(WrongKeyError):
        decrypt(new_blob, ring(KEY_A), CONTEXT)


def test_reencrypt_keeps_context_binding() -> None:
    old_blob = encrypt(PLAINTEXT, ring(KEY_A), CONTEXT)
    other = EncryptionContext("tenant-2", "acct-123", "aws_access_key")
    with pytest.raises(TamperedCiphertextError):
        reencrypt(old_blob, ring(KEY_B, KEY_A), other)


def test_needs_reencryption_false_for_current_key_and_checks_header() -> None:
    blob = encrypt(PLAINTEXT, ring(), CONTEXT)
    assert needs_reencryption(blob, ring()) is False
    assert needs_reencryption(blob, ring(KEY_C)) is True
    with pytest.raises(TamperedCiphertextError):
        needs_reencryption(b"", ring())
    with pytest.raises(UnknownCiphertextVersionError):
        needs_reencryption(b"\x02" + blob[1:], ring())


def test_unknown_key_is_wrong_key_with_helpful_message() -> None:
    blob = encrypt(PLAINTEXT, ring(KEY_C), CONTEXT)
    with pytest.raises(WrongKeyError) as info:
        decrypt(blob, ring(KEY_A, KEY_B), CONTEXT)
    message = str(info.value)
    assert key_id(KEY_C).hex() in message
    assert "ENCRYPTION_KEY" in message
    assert "ENCRYPTION_KEYS_PREVIOUS" in message
    assert_no_leak(info.value, KEY_A, KEY_B, KEY_C, PLAINTEXT, blob)


# --- key ring --------------------------------------------------------------------------------


def test_keyring_repr_shows_only_key_ids() -> None:
    keys = ring(KEY_A, KEY_B, KEY_C)
    text = f"{keys!r} {keys!s}"
    assert key_id(KEY_A).hex() in text
    assert key_id(KEY_B).hex() in text
    for key in (KEY_A, KEY_B, KEY_C):
        assert key.hex() not in text
        assert repr(key) not in text
        assert key.hex()[:16] not in text
    assert keys.current_key_id == key_id(KEY_A)
    assert keys.key_ids == (key_id(KEY_A), key_id(KEY_B), key_id(KEY_C))


def test_keyring_refuses_pickling_and_mutation() -> None:
    keys = ring()
    with pytest.raises(TypeError):
        pickle.dumps(keys)
    with pytest.raises(AttributeError):
        keys._current_id = b"xxxx"  # type: ignore[misc]
    assert not hasattr(keys, "__dict__")


def test_keyring_deduplicates_and_rejects_bad_lengths() -> None:
    assert ring(KEY_A, KEY_A, KEY_B).key_ids == (key_id(KEY_A), key_id(KEY_B))
    with pytest.raises(MalformedKeyError) as info:
        KeyRing(b"short")
    assert "5 bytes" in str(info.value)
    with pytest.raises(MalformedKeyError):
        KeyRing(KEY_A, [KEY_B + b"x"])
    with pytest.raises(TypeError):
        KeyRing(KEY_A.hex())  # type: ignore[arg-type]


def test_keyring_rejects_key_id_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "key_id", lambda key: b"\x00\x00\x00\x00")
    with pytest.raises(ConfigurationError):
        KeyRing(KEY_A, [KEY_B])


def test_from_environment_reads_current_and_previous() -> None:
    env = {
        "ENCRYPTION_KEY": KEY_A.hex(),
        "ENCRYPTION_KEYS_PREVIOUS": (
            f" {KEY_B.hex()},{base64.b64encode(KEY_C).decode()}\n"
            f"{base64.urlsafe_b64encode(bytes(32 * [0xFB])).decode()} ,"
        ),
    }
    keys = KeyRing.from_environment(env)
    assert keys.key_ids == (
        key_id(KEY_A),
        key_id(KEY_B),
        key_id(KEY_C),
        key_id(bytes(32 * [0xFB])),
    )


def test_from_environment_without_previous() -> None:
    keys = KeyRing.from_environment({"ENCRYPTION_KEY": KEY_A.hex()})
    assert keys.key_ids == (key_id(KEY_A),)


@pytest.mark.parametrize("env", [{}, {"ENCRYPTION_KEY": ""}, {"ENCRYPTION_KEY": "  \n"}])
def test_from_environment_missing_key(env: dict[str, str]) -> None:
    with pytest.raises(MissingKeyError) as info:
        KeyRing.from_environment(env)
    message = str(info.value)
    assert "ENCRYPTION_KEY" in message
    assert "64 hex" in message


def test_from_environment_uses_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", KEY_B.hex())
    monkeypatch.delenv("ENCRYPTION_KEYS_PREVIOUS", raising=False)
    assert KeyRing.from_environment().current_key_id == key_id(KEY_B)


def test_from_environment_malformed_previous_names_the_entry_not_the_value() -> None:
    bad = "not-a-key-but-a-secretish-value"
    env = {"ENCRYPTION_KEY": KEY_A.hex(), "ENCRYPTION_KEYS_PREVIOUS": f"{KEY_B.hex()},{bad}"}
    with pytest.raises(MalformedKeyError) as info:
        KeyRing.from_environment(env)
    assert "ENCRYPTION_KEYS_PREVIOUS entry #2" in str(info.value)
    assert_no_leak(info.value, bad, KEY_A.hex(), KEY_B.hex())


def test_from_strings() -> None:
    keys = KeyRing.from_strings(KEY_A.hex(), [base64.b64encode(KEY_B).decode()])
    assert keys.key_ids == (key_id(KEY_A), key_id(KEY_B))
    blob = encrypt(PLAINTEXT, KeyRing.from_strings(KEY_B.hex()), CONTEXT)
    assert decrypt(blob, keys, CONTEXT) == PLAINTEXT


# --- key parsing -----------------------------------------------------------------------------


def test_parse_hex_key() -> None:
    assert parse_key(KEY_A.hex()) == KEY_A
    assert parse_key(KEY_A.hex().upper()) == KEY_A
    assert parse_key(f"  {KEY_A.hex()}\n") == KEY_A


def test_parse_base64_keys() -> None:
    # 0xFB bytes encode to '+' and '/' in standard base64 and '-' and '_' in urlsafe base64.
    key = bytes([0xFB, 0xFF, 0xBF] * 10 + [0xFB, 0xFF])
    standard = base64.b64encode(key).decode()
    urlsafe = base64.urlsafe_b64encode(key).decode()
    assert len(standard) == 44
    assert any(c in standard for c in "+/")
    assert any(c in urlsafe for c in "-_")
    assert parse_key(standard) == key
    assert parse_key(urlsafe) == key
    assert parse_key(urlsafe.rstrip("=")) == key


def test_parse_raw_32_char_key_warns(caplog: pytest.LogCaptureFixture) -> None:
    raw = "legacy-typescript-key-32-chars!!"
    assert len(raw) == 32
    with (
        caplog.at_level(logging.WARNING, logger="finops_pipeline.security.ciphertext"),
        pytest.warns(WeakKeyWarning) as record,
    ):
        key = parse_key(raw)
    assert key == raw.encode("utf-8")
    warning_text = str(record[0].message)
    assert "token_hex(32)" in warning_text
    assert "finops keys generate" in warning_text
    assert raw not in warning_text
    logged = [r for r in caplog.records if r.name == "finops_pipeline.security.ciphertext"]
    assert logged
    assert logged[0].levelno == logging.WARNING
    assert "weak" in logged[0].getMessage().lower()
    assert raw not in caplog.text


def test_raw_key_works_in_a_ring() -> None:
    raw = "legacy-typescript-key-32-chars!!"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        keys = KeyRing.from_strings(raw)
    assert decrypt(encrypt(PLAINTEXT, keys, CONTEXT), keys, CONTEXT) == PLAINTEXT


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        KEY_A.hex()[:-1],
        KEY_A.hex() + "0",
        "g" * 64,
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        "!" * 44,
        "é" * 32,
        "x" * 31,
        "x" * 33,
    ],
    ids=[
        "short",
        "hex-63",
        "hex-65",
        "non-hex-64",
        "b64-31-bytes",
        "b64-33-bytes",
        "non-b64-44",
        "non-ascii-32",
        "raw-31",
        "raw-33",
    ],
)
def test_parse_malformed_keys_report_length_only(raw: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MalformedKeyError) as info:
            parse_key(raw)
    message = str(info.value)
    assert f"got {len(raw.strip())} characters" in message
    assert "64 hex" in message
    assert "base64" in message
    assert raw not in message
    assert raw not in repr(info.value)


@pytest.mark.parametrize("raw", ["", "   ", "\n\t"])
def test_parse_empty_key_is_missing(raw: str) -> None:
    with pytest.raises(MissingKeyError):
        parse_key(raw)


def test_generate_key_is_random_64_hex() -> None:
    first, second = generate_key(), generate_key()
    assert len(first) == 64
    assert first != second
    assert parse_key(first) == bytes.fromhex(first)


def test_key_id_is_4_bytes_and_not_a_key_prefix() -> None:
    kid = key_id(KEY_A)
    assert len(kid) == 4
    assert kid != KEY_A[:4]
    assert key_id(KEY_A) != key_id(KEY_B)


def test_errors_never_contain_key_or_plaintext() -> None:
    keys = ring(KEY_A)
    blob = encrypt(PLAINTEXT, keys, CONTEXT)
    failures: list[CredentialError] = []
    for attempt in (
        lambda: decrypt(blob, ring(KEY_B), CONTEXT),
        lambda: decrypt(blob, keys, EncryptionContext("t", "a", "k")),
        lambda: decrypt(b"\x09" + blob[1:], keys, CONTEXT),
        lambda: decrypt(blob[:20], keys, CONTEXT),
        lambda: parse_key(KEY_A.hex()[:40]),
    ):
        with pytest.raises(CredentialError) as info:
            attempt()
        failures.append(info.value)
    for failure in failures:
        assert_no_leak(failure, KEY_A, KEY_B, KEY_A.hex()[:40], PLAINTEXT, blob, blob[17:])
