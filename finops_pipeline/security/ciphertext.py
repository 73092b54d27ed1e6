"""AES-256-GCM encryption of stored credentials, with a versioned, key-rotatable blob format.

Blob format v1::

    0x01 | key id (4 bytes) | nonce (12 bytes) | AES-GCM ciphertext || tag (16 bytes)

The associated data given to AES-GCM is the 17-byte header followed by
:meth:`EncryptionContext.associated_data`, so the version, the key id, the nonce and the row the
blob belongs to (tenant, account, credential kind) are all authenticated. Moving a blob to another
row, or editing any byte of it, makes decryption fail with :class:`TamperedCiphertextError`.

This module is pure: no Dagster, no database. Nothing it raises or logs contains key material,
plaintext or ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
import struct
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from finops_pipeline.errors import (
    ConfigurationError,
    MalformedKeyError,
    MissingKeyError,
    TamperedCiphertextError,
    UnknownCiphertextVersionError,
    WrongKeyError,
)

__all__ = [
    "CURRENT_KEY_ENV",
    "FORMAT_VERSION",
    "PREVIOUS_KEYS_ENV",
    "EncryptionContext",
    "KeyRing",
    "WeakKeyWarning",
    "decrypt",
    "encrypt",
    "generate_key",
    "key_id",
    "needs_reencryption",
    "parse_key",
    "reencrypt",
]

logger = logging.getLogger(__name__)

CURRENT_KEY_ENV = "ENCRYPTION_KEY"
PREVIOUS_KEYS_ENV = "ENCRYPTION_KEYS_PREVIOUS"

FORMAT_VERSION = 1
KEY_SIZE = 32
KEY_ID_SIZE = 4
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER_SIZE = 1 + KEY_ID_SIZE + NONCE_SIZE
_MIN_BLOB_SIZE = _HEADER_SIZE + TAG_SIZE

# Domain separation: the key id hash can never collide with any other SHA-256 use of the key.
_KEY_ID_PREFIX = b"finops-key-id:v1"
_CONTEXT_PREFIX = b"finops-ctx:v1"

_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
_GENERATE_HINT = (
    "generate one with `finops keys generate` or "
    '`python -c "import secrets;print(secrets.token_hex(32))"`'
)
_ACCEPTED_FORMS = (
    "64 hex characters, or standard/urlsafe base64 (44 characters) of exactly 32 bytes"
)


class WeakKeyWarning(UserWarning):
    """A legacy raw 32-character key was accepted; it has far less entropy than 32 random bytes."""


# --- keys ----------------------------------------------------------------------------------


def parse_key(raw: str, *, source: str = "encryption key") -> bytes:
    """Decode a configured encryption key into 32 raw bytes.

    Accepted forms, tried in this order: 64 hex characters; standard or urlsafe base64 that
    decodes to exactly 32 bytes (44 characters padded, 43 unpadded); a raw 32-character string
    whose UTF-8 bytes are used directly. The last form only exists for compatibility with the
    original TypeScript service and triggers a :class:`WeakKeyWarning` plus a logged warning.

    Args:
        raw: The key as configured; surrounding whitespace is ignored.
        source: Where the key came from (e.g. an environment variable name), used in messages.

    Returns:
        The 32-byte key.

    Raises:
        MissingKeyError: ``raw`` is empty or only whitespace.
        MalformedKeyError: ``raw`` is in none of the accepted forms. The message carries only
            the received length, never the key.
    """
    if not isinstance(raw, str):
        raise TypeError(f"{source} must be a str, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise MissingKeyError(
            f"The {source} is empty. Set it to 32 bytes as 64 hex characters; {_GENERATE_HINT}."
        )

    if len(text) == 64 and _HEX_RE.fullmatch(text):
        return bytes.fromhex(text)

    if len(text) in (43, 44):
        decoded = _decode_base64_key(text)
        if decoded is not None:
            return decoded

    # Legacy form: the TypeScript service fed the string's UTF-8 bytes straight to AES.
    legacy = text.encode("utf-8")
    if len(text) == KEY_SIZE and len(legacy) == KEY_SIZE:
        message = (
            f"The {source} is a raw 32-character string (legacy format of the TypeScript "
            "service). It is weak: typed characters carry far less than 256 bits of entropy. "
            f"Replace it with a random key; {_GENERATE_HINT}, and keep the old one in "
            f"{PREVIOUS_KEYS_ENV} until stored credentials are re-encrypted."
        )
        warnings.warn(message, WeakKeyWarning, stacklevel=2)
        logger.warning(message)
        return legacy

    raise MalformedKeyError(
        f"The {source} is not a valid key: expected {_ACCEPTED_FORMS} "
        f"(or a legacy raw 32-character string), got {len(text)} characters. {_GENERATE_HINT}."
    )


def _decode_base64_key(text: str) -> bytes | None:
    """Decode standard or urlsafe base64 (padding optional) to 32 bytes, or return None."""
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            decoded = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(decoded) == KEY_SIZE:
            return decoded
    return None


def key_id(key: bytes) -> bytes:
    """Return the 4-byte identifier of a key, stored in every blob's header.

    It is a truncated, domain-separated SHA-256, so it identifies the key without revealing it.

    Args:
        key: A 32-byte key.

    Returns:
        The first 4 bytes of ``SHA-256(b"finops-key-id:v1" + key)``.
    """
    return hashlib.sha256(_KEY_ID_PREFIX + bytes(key)).digest()[:KEY_ID_SIZE]


def generate_key() -> str:
    """Return a fresh random 256-bit key as 64 hex characters, ready for ``ENCRYPTION_KEY``."""
    return secrets.token_hex(KEY_SIZE)


# --- context -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncryptionContext:
    """The row a blob belongs to; it is authenticated but not stored in the blob.

    Attributes:
        tenant_id: The tenant owning the cloud account.
        account_id: The cloud account the credentials are for.
        credential_kind: The credential type, e.g. ``"aws_access_key"``.
    """

    tenant_id: str
    account_id: str
    credential_kind: str

    def __post_init__(self) -> None:
        """Reject non-string fields, whose encoding would otherwise be ambiguous."""
        for name in ("tenant_id", "account_id", "credential_kind"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(
                    f"EncryptionContext.{name} must be a str, not {type(value).__name__}; "
                    "convert ids with str() first"
                )

    def associated_data(self) -> bytes:
        """Return the canonical encoding used as AES-GCM associated data.

        Each field is UTF-8 encoded and prefixed with its 4-byte big-endian length, so no two
        different contexts (e.g. ``("ab", "c")`` and ``("a", "bc")``) share an encoding.

        Returns:
            ``b"finops-ctx:v1"`` followed by the length-prefixed fields.
        """
        parts = [_CONTEXT_PREFIX]
        for value in (self.tenant_id, self.account_id, self.credential_kind):
            encoded = value.encode("utf-8")
            parts.append(struct.pack(">I", len(encoded)))
            parts.append(encoded)
        return b"".join(parts)


# --- key ring ------------------------------------------------------------------------------


class KeyRing:
    """The current encryption key plus older keys that may still decrypt stored blobs.

    The repr shows key ids only. Key bytes live in private attributes and are never printed.
    """

    __slots__ = ("_current_id", "_keys")

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        """Build a ring.

        Args:
            current: The 32-byte key used for every new encryption.
            previous: Older 32-byte keys accepted for decryption only. Duplicates (including
                of ``current``) are ignored.

        Raises:
            MalformedKeyError: A key is not 32 bytes.
            ConfigurationError: Two different keys share a key id (astronomically unlikely;
                generate a new key).
        """
        keys: dict[bytes, bytes] = {}
        for position, key in enumerate((current, *previous)):
            label = "current key" if position == 0 else f"previous key #{position}"
            if not isinstance(key, bytes | bytearray | memoryview):
                raise TypeError(f"The {label} must be bytes; parse strings with parse_key()")
            key = bytes(key)
            if len(key) != KEY_SIZE:
                raise MalformedKeyError(
                    f"The {label} must be exactly {KEY_SIZE} bytes, got {len(key)} bytes."
                )
            kid = key_id(key)
            existing = keys.get(kid)
            if existing is None:
                keys[kid] = key
            elif existing != key:
                raise ConfigurationError(
                    f"The {label} has the same key id ({kid.hex()}) as another key in the ring. "
                    f"Generate a new key; {_GENERATE_HINT}."
                )
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_current_id", key_id(bytes(current)))

    def __setattr__(self, name: str, value: object) -> None:
        """Refuse mutation: a ring is shared between threads and must not change under them."""
        raise AttributeError("KeyRing is immutable; build a new one")

    @classmethod
    def from_strings(cls, current: str, previous: Sequence[str] = ()) -> KeyRing:
        """Build a ring from configured key strings (any form :func:`parse_key` accepts).

        Args:
            current: The current key.
            previous: Older keys, for decryption only.

        Returns:
            The key ring.

        Raises:
            MissingKeyError: ``current`` is empty.
            MalformedKeyError: A key is in no accepted form.
        """
        current_key = parse_key(current, source="current encryption key")
        previous_keys = [
            parse_key(value, source=f"previous encryption key #{index}")
            for index, value in enumerate(previous, start=1)
        ]
        return cls(current_key, previous_keys)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> KeyRing:
        """Build a ring from ``ENCRYPTION_KEY`` and ``ENCRYPTION_KEYS_PREVIOUS``.

        ``ENCRYPTION_KEYS_PREVIOUS`` is optional and holds keys separated by commas and/or
        whitespace, so a legacy raw key containing either cannot be listed there.

        Args:
            environ: Where to read the variables; defaults to ``os.environ``.

        Returns:
            The key ring.

        Raises:
            MissingKeyError: ``ENCRYPTION_KEY`` is unset or empty.
            MalformedKeyError: A key is in no accepted form.
        """
        env = os.environ if environ is None else environ
        current = env.get(CURRENT_KEY_ENV, "")
        if not current.strip():
            raise MissingKeyError(
                f"{CURRENT_KEY_ENV} is not set. Set it to 32 bytes as 64 hex characters; "
                f"{_GENERATE_HINT}. Credentials are never stored unencrypted."
            )
        current_key = parse_key(current, source=CURRENT_KEY_ENV)
        previous_raw = env.get(PREVIOUS_KEYS_ENV, "")
        previous_keys = [
            parse_key(value, source=f"{PREVIOUS_KEYS_ENV} entry #{index}")
            for index, value in enumerate(
                (part for part in re.split(r"[,\s]+", previous_raw) if part), start=1
            )
        ]
        return cls(current_key, previous_keys)

    @property
    def current_key_id(self) -> bytes:
        """The 4-byte id of the current key."""
        return self._current_id

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """Ids of every key in the ring, current first."""
        return (self._current_id, *(kid for kid in self._keys if kid != self._current_id))

    def _current_key(self) -> bytes:
        return self._keys[self._current_id]

    def _key_for(self, kid: bytes) -> bytes | None:
        return self._keys.get(kid)

    def __contains__(self, kid: object) -> bool:
        """Return whether a key id belongs to the ring."""
        return kid in self._keys

    def __repr__(self) -> str:
        """Show key ids only."""
        previous = ", ".join(kid.hex() for kid in self.key_ids[1:])
        return f"KeyRing(current={self._current_id.hex()}, previous=[{previous}])"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        """Refuse pickling, so keys cannot be written to IO storage or caches by accident."""
        raise TypeError("KeyRing holds encryption keys and cannot be pickled")

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        """Refuse pickling under every protocol."""
        raise TypeError("KeyRing holds encryption keys and cannot be pickled")

    def __copy__(self) -> KeyRing:
        """Return self: the ring is immutable, so copies need no pickling support."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> KeyRing:
        """Return self: the ring is immutable, so copies need no pickling support."""
        return self


# --- blobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    version: int
    key_id: bytes
    nonce: bytes
    raw: bytes


def _as_bytes(blob: bytes | bytearray | memoryview) -> bytes:
    # psycopg2 returns bytea as memoryview; accept it rather than make every caller convert.
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise TypeError(f"ciphertext must be bytes, not {type(blob).__name__}")
    return bytes(blob)


def _parse_header(blob: bytes) -> _Header:
    if not blob:
        raise TamperedCiphertextError(
            "The stored credential ciphertext is empty. Re-enter the credentials."
        )
    version = blob[0]
    if version != FORMAT_VERSION:
        raise UnknownCiphertextVersionError(
            f"The stored credentials use ciphertext format version {version}, but this release "
            f"only understands version {FORMAT_VERSION}. Upgrade finops-pipeline."
        )
    if len(blob) < _MIN_BLOB_SIZE:
        raise TamperedCiphertextError(
            f"The stored credential ciphertext is truncated ({len(blob)} bytes; a version "
            f"{FORMAT_VERSION} blob has at least {_MIN_BLOB_SIZE}). Re-enter the credentials."
        )
    return _Header(
        version=version,
        key_id=blob[1 : 1 + KEY_ID_SIZE],
        nonce=blob[1 + KEY_ID_SIZE : _HEADER_SIZE],
        raw=blob[:_HEADER_SIZE],
    )


def _encrypt_with_nonce(
    plaintext: bytes, ring: KeyRing, context: EncryptionContext, nonce: bytes
) -> bytes:
    """Encrypt with an explicit nonce. Only for known-answer tests: never reuse a nonce."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    header = bytes([FORMAT_VERSION]) + ring.current_key_id + nonce
    sealed = AESGCM(ring._current_key()).encrypt(
        nonce, bytes(plaintext), header + context.associated_data()
    )
    return header + sealed


def encrypt(plaintext: bytes, ring: KeyRing, context: EncryptionContext) -> bytes:
    """Encrypt under the ring's current key, bound to ``context``.

    Args:
        plaintext: The bytes to protect.
        ring: The key ring; its current key is used.
        context: The row the blob will be stored in; the same context is needed to decrypt.

    Returns:
        A version 1 blob (33 bytes longer than ``plaintext``).
    """
    return _encrypt_with_nonce(plaintext, ring, context, os.urandom(NONCE_SIZE))


def decrypt(
    blob: bytes | bytearray | memoryview, ring: KeyRing, context: EncryptionContext
) -> bytes:
    """Decrypt a blob produced by :func:`encrypt`.

    Args:
        blob: The stored blob.
        ring: The key ring; whichever key the blob's header names is used.
        context: The row the blob was read from.

    Returns:
        The plaintext.

    Raises:
        TamperedCiphertextError: The blob is empty, truncated, altered, or belongs to another
            row; or the key with its id is not the one used to encrypt it.
        UnknownCiphertextVersionError: The blob's format version is not supported.
        WrongKeyError: The key the blob names is not in the ring.
    """
    data = _as_bytes(blob)
    header = _parse_header(data)
    key = ring._key_for(header.key_id)
    if key is None:
        raise WrongKeyError(
            f"The stored credentials were encrypted with key id {header.key_id.hex()}, which is "
            f"not in the key ring (current key id {ring.current_key_id.hex()}). Set "
            f"{CURRENT_KEY_ENV} or add the old key to {PREVIOUS_KEYS_ENV}."
        )
    try:
        return AESGCM(key).decrypt(
            header.nonce, data[_HEADER_SIZE:], header.raw + context.associated_data()
        )
    except InvalidTag:
        # `from None` keeps the ciphertext-bearing frames out of the chained traceback.
        raise TamperedCiphertextError(
            "The stored credentials failed authentication: the blob was altered, or it belongs "
            "to another account, tenant or credential kind, or the key is wrong. Re-enter the "
            "credentials."
        ) from None


def needs_reencryption(blob: bytes | bytearray | memoryview, ring: KeyRing) -> bool:
    """Return whether a blob was encrypted under a key other than the ring's current key.

    Only the header is parsed; nothing is decrypted.

    Args:
        blob: The stored blob.
        ring: The key ring.

    Returns:
        True if the blob's key id is not the current key id.

    Raises:
        TamperedCiphertextError: The blob is empty or truncated.
        UnknownCiphertextVersionError: The blob's format version is not supported.
    """
    return _parse_header(_as_bytes(blob)).key_id != ring.current_key_id


def reencrypt(
    blob: bytes | bytearray | memoryview, ring: KeyRing, context: EncryptionContext
) -> bytes:
    """Decrypt with whichever ring key the blob names, then encrypt under the current key.

    Args:
        blob: The stored blob.
        ring: The key ring.
        context: The row the blob belongs to.

    Returns:
        A new blob under the current key, with a fresh nonce.

    Raises:
        TamperedCiphertextError: See :func:`decrypt`.
        UnknownCiphertextVersionError: See :func:`decrypt`.
        WrongKeyError: See :func:`decrypt`.
    """
    return encrypt(decrypt(blob, ring, context), ring, context)
