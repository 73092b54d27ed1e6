"""The credential-kind contract, and secrets that never show up in reprs, pickles or logs.

Each provider defines its kinds in ``providers/<cloud>/credentials.py``.

This module is pure: no Dagster, no database. :func:`seal_credentials` and
:func:`open_credentials` are the only places credentials are serialised and encrypted, or
decrypted and deserialised (:mod:`finops_pipeline.security.ciphertext` does the cryptography).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn, Protocol, runtime_checkable

from finops_pipeline.errors import CredentialError
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing, decrypt, encrypt
from finops_pipeline.security.redaction import MASK, register_secrets

__all__ = [
    "Credentials",
    "Secret",
    "credential_kind",
    "deserialize_credentials",
    "open_credentials",
    "seal_credentials",
    "serialize_credentials",
]

# --- Secret --------------------------------------------------------------------------------


class Secret:
    """A string that does not reveal itself in ``repr``, ``str``, f-strings, logs or pickles.

    Call :meth:`reveal` at the single point where the real value is needed (e.g. a boto3 call).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Wrap a secret string.

        Args:
            value: The secret.
        """
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the real value. Keep the result out of logs and exceptions."""
        return self._value

    def __repr__(self) -> str:
        """Return a masked repr."""
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        """Return the mask, so formatting a Secret into a message leaks nothing."""
        return MASK

    def __format__(self, format_spec: str) -> str:
        """Format the mask, never the value."""
        return format(MASK, format_spec)

    def __eq__(self, other: object) -> bool:
        """Compare values in constant time."""
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    # A hash derived from the value would let anyone holding hashes test guesses against it.
    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        """Return whether the value is non-empty."""
        return bool(self._value)

    def __setattr__(self, name: str, value: object) -> None:
        """Refuse mutation."""
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> NoReturn:
        """Refuse pickling, so secrets cannot land in Dagster IO storage by accident."""
        raise TypeError("Secret values cannot be pickled; store them encrypted instead")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        """Refuse pickling under every protocol."""
        raise TypeError("Secret values cannot be pickled; store them encrypted instead")

    def __getstate__(self) -> NoReturn:
        """Refuse state extraction (another pickling path)."""
        raise TypeError("Secret values cannot be pickled; store them encrypted instead")

    def __copy__(self) -> Secret:
        """Return self: a Secret is immutable, and copying must not need pickling support."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        """Return self: a Secret is immutable, and copying must not need pickling support."""
        return self


def mask_identifier(value: str) -> str:
    """Keep the first and last 4 characters of an identifier, enough to tell keys apart."""
    if len(value) <= 8:
        return "****"
    return f"{value[:4]}****{value[-4:]}"


def require_str(owner: str, name: str, value: object) -> None:
    """Refuse a field that is not a non-empty string (a credential class's ``__post_init__``)."""
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{name} must be a str, not {type(value).__name__}")
    if not value:
        raise CredentialError(f"{owner}.{name} is empty; enter the full credentials.")


def require_secret(owner: str, name: str, value: object) -> None:
    """Refuse a field that is not a non-empty :class:`Secret`."""
    if not isinstance(value, Secret):
        # Refusing raw strings keeps unmasked values out of reprs and pickles from the start.
        raise TypeError(f"{owner}.{name} must be a Secret, not {type(value).__name__}")
    if not value:
        raise CredentialError(f"{owner}.{name} is empty; enter the full credentials.")


# --- the credential-kind contract ----------------------------------------------------------


def malformed_credentials(detail: str) -> CredentialError:
    """The one error every kind raises for a stored payload it cannot read."""
    return CredentialError(f"The stored credentials are malformed: {detail}. Re-enter them.")


def payload_field(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field of a decoded payload; a missing, empty or non-string one is malformed."""
    value = payload.get(name)
    if value is None:
        if required:
            raise malformed_credentials(f"the field {name!r} is missing")
        return None
    if not isinstance(value, str):
        raise malformed_credentials(f"the field {name!r} is not a string")
    if not value:
        raise malformed_credentials(f"the field {name!r} is empty")
    return value


@runtime_checkable
class Credentials(Protocol):
    """What every provider's credential kind implements (see ``providers/<cloud>/credentials.py``).

    A kind is a frozen dataclass holding its secret parts as :class:`Secret`. It is registered by
    listing its class in its provider's ``ProviderSpec.credential_classes``; ``KIND`` is stored in
    ``cloud_accounts.credential_kind`` and bound into the ciphertext's encryption context.
    """

    KIND: ClassVar[str]

    @property
    def kind(self) -> str: ...

    def to_payload(self) -> dict[str, str]:
        """The fields to encrypt, secrets in clear (without ``kind``)."""
        ...

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Credentials:
        """Rebuild from :meth:`to_payload`'s fields; raise :func:`malformed_credentials`."""
        ...

    def secrets(self) -> tuple[Secret, ...]:
        """Every secret part, for the log redaction."""
        ...


def _credential_class(kind: object) -> type[Credentials]:
    # The registry lives with the providers; importing it here lazily keeps this module free of
    # any provider at import time.
    from finops_pipeline.providers import credential_class, credential_kinds

    cls = credential_class(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(credential_kinds())
        raise malformed_credentials(
            f"the 'kind' field is missing or unknown (expected one of: {known})"
        )
    return cls


def credential_kind(credentials: Credentials) -> str:
    """Return the kind string of a credentials object (e.g. ``"aws_access_key"``).

    Args:
        credentials: The credentials.

    Returns:
        The kind, as stored in the serialized form and in the encryption context.
    """
    kind = getattr(type(credentials), "KIND", None)
    if not isinstance(kind, str) or not isinstance(credentials, Credentials):
        raise TypeError(f"not a credentials object: {type(credentials).__name__}")
    return kind


def serialize_credentials(credentials: Credentials) -> bytes:
    """Encode credentials as compact JSON with a ``"kind"`` field, ready for encryption.

    Args:
        credentials: The credentials.

    Returns:
        UTF-8 JSON bytes with sorted keys. Contains the secrets in clear: encrypt it.
    """
    payload = {"kind": credential_kind(credentials), **credentials.to_payload()}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def deserialize_credentials(data: bytes | bytearray | memoryview) -> Credentials:
    """Decode bytes produced by :func:`serialize_credentials`.

    Unknown extra fields are ignored so an older release can read a newer payload.

    Args:
        data: The JSON bytes.

    Returns:
        The credentials object named by the payload's ``"kind"``.

    Raises:
        CredentialError: The payload is not JSON, not an object, has an unknown kind, or lacks
            a field. The message names fields but never quotes values.
    """
    try:
        payload = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError):
        # `from None`: the decoder's exception can quote the payload, which holds secrets.
        raise malformed_credentials("they are not valid UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise malformed_credentials("expected a JSON object")
    return _credential_class(payload.get("kind")).from_payload(payload)


class SealedCredentials(Protocol):
    """A stored account's encrypted credentials and what they are bound to."""

    credentials_encrypted: bytes

    @property
    def encryption_context(self) -> EncryptionContext: ...


def open_credentials(account: SealedCredentials, key_ring: KeyRing) -> Credentials:
    """Decrypt and deserialise an account's credentials; their secrets join the log redaction.

    Raises:
        CredentialError: Wrong key, tampered or misbound ciphertext, or a malformed payload.
    """
    credentials = deserialize_credentials(
        decrypt(account.credentials_encrypted, key_ring, account.encryption_context)
    )
    register_secrets(*credentials.secrets())
    return credentials


def seal_credentials(
    credentials: Credentials, key_ring: KeyRing, context: EncryptionContext
) -> bytes:
    """Serialise and encrypt credentials under the ring's current key, bound to ``context``;
    :func:`open_credentials` reverses it."""
    return encrypt(serialize_credentials(credentials), key_ring, context)
