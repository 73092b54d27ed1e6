"""Typed cloud credentials whose secret parts never show up in reprs, pickles or logs.

This module is pure: no Dagster, no database. :mod:`finops_pipeline.security.ciphertext` encrypts the bytes
produced by :func:`serialize_credentials`.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, Protocol

from finops_pipeline.errors import CredentialError
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing, decrypt
from finops_pipeline.security.redaction import MASK, register_secrets

__all__ = [
    "AwsAccessKeyCredentials",
    "AwsRoleCredentials",
    "Credentials",
    "Secret",
    "credential_kind",
    "deserialize_credentials",
    "open_credentials",
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


def _mask_identifier(value: str) -> str:
    """Keep the first and last 4 characters of an identifier, enough to tell keys apart."""
    if len(value) <= 8:
        return "****"
    return f"{value[:4]}****{value[-4:]}"


def _require_str(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{name} must be a str, not {type(value).__name__}")
    if not value:
        raise CredentialError(f"{owner}.{name} is empty; enter the full credentials.")


def _require_secret(owner: str, name: str, value: object) -> None:
    if not isinstance(value, Secret):
        # Refusing raw strings keeps unmasked values out of reprs and pickles from the start.
        raise TypeError(f"{owner}.{name} must be a Secret, not {type(value).__name__}")
    if not value:
        raise CredentialError(f"{owner}.{name} is empty; enter the full credentials.")


# --- credential types ----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class AwsAccessKeyCredentials:
    """A long-lived (or STS session) AWS access key.

    Attributes:
        access_key_id: The access key id, e.g. ``AKIA...``. Shown masked in the repr.
        secret_access_key: The secret access key.
        session_token: The STS session token, for temporary credentials.
    """

    KIND: ClassVar[str] = "aws_access_key"

    access_key_id: str
    secret_access_key: Secret
    session_token: Secret | None = None

    def __post_init__(self) -> None:
        """Validate field types so raw strings never sit where a Secret belongs."""
        owner = type(self).__name__
        _require_str(owner, "access_key_id", self.access_key_id)
        _require_secret(owner, "secret_access_key", self.secret_access_key)
        if self.session_token is not None:
            _require_secret(owner, "session_token", self.session_token)

    @property
    def kind(self) -> str:
        """The credential kind, ``"aws_access_key"``."""
        return self.KIND

    def __repr__(self) -> str:
        """Show a masked access key id and no secret."""
        token = "None" if self.session_token is None else repr(self.session_token)
        return (
            f"{type(self).__name__}(access_key_id='{_mask_identifier(self.access_key_id)}', "
            f"secret_access_key={self.secret_access_key!r}, session_token={token})"
        )


@dataclass(frozen=True, repr=False)
class AwsRoleCredentials:
    """An IAM role the pipeline assumes, protected by an external id.

    Attributes:
        role_arn: The role's ARN. Not secret, shown in the repr.
        external_id: The STS external id agreed with the account owner.
    """

    KIND: ClassVar[str] = "aws_role"

    role_arn: str
    external_id: Secret

    def __post_init__(self) -> None:
        """Validate field types so raw strings never sit where a Secret belongs."""
        owner = type(self).__name__
        _require_str(owner, "role_arn", self.role_arn)
        _require_secret(owner, "external_id", self.external_id)

    @property
    def kind(self) -> str:
        """The credential kind, ``"aws_role"``."""
        return self.KIND

    def __repr__(self) -> str:
        """Show the role ARN and a masked external id."""
        return (
            f"{type(self).__name__}(role_arn={self.role_arn!r}, external_id={self.external_id!r})"
        )


Credentials = AwsAccessKeyCredentials | AwsRoleCredentials

_KINDS: dict[str, type[AwsAccessKeyCredentials] | type[AwsRoleCredentials]] = {
    AwsAccessKeyCredentials.KIND: AwsAccessKeyCredentials,
    AwsRoleCredentials.KIND: AwsRoleCredentials,
}


def credential_kind(credentials: Credentials) -> str:
    """Return the kind string of a credentials object (``"aws_access_key"`` or ``"aws_role"``).

    Args:
        credentials: The credentials.

    Returns:
        The kind, as stored in the serialized form and in the encryption context.
    """
    if not isinstance(credentials, AwsAccessKeyCredentials | AwsRoleCredentials):
        raise TypeError(f"not a credentials object: {type(credentials).__name__}")
    return credentials.KIND


def serialize_credentials(credentials: Credentials) -> bytes:
    """Encode credentials as compact JSON with a ``"kind"`` field, ready for encryption.

    Args:
        credentials: The credentials.

    Returns:
        UTF-8 JSON bytes with sorted keys. Contains the secrets in clear: encrypt it.
    """
    payload: dict[str, str]
    if isinstance(credentials, AwsAccessKeyCredentials):
        payload = {
            "kind": credentials.KIND,
            "access_key_id": credentials.access_key_id,
            "secret_access_key": credentials.secret_access_key.reveal(),
        }
        if credentials.session_token is not None:
            payload["session_token"] = credentials.session_token.reveal()
    elif isinstance(credentials, AwsRoleCredentials):
        payload = {
            "kind": credentials.KIND,
            "role_arn": credentials.role_arn,
            "external_id": credentials.external_id.reveal(),
        }
    else:
        raise TypeError(f"not a credentials object: {type(credentials).__name__}")
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _malformed(detail: str) -> CredentialError:
    return CredentialError(f"The stored credentials are malformed: {detail}. Re-enter them.")


def _field(payload: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise _malformed(f"the field {name!r} is missing")
        return None
    if not isinstance(value, str):
        raise _malformed(f"the field {name!r} is not a string")
    if not value:
        raise _malformed(f"the field {name!r} is empty")
    return value


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
        raise _malformed("they are not valid UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise _malformed("expected a JSON object")
    kind = payload.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        known = ", ".join(sorted(_KINDS))
        raise _malformed(f"the 'kind' field is missing or unknown (expected one of: {known})")

    if kind == AwsAccessKeyCredentials.KIND:
        token = _field(payload, "session_token", required=False)
        return AwsAccessKeyCredentials(
            access_key_id=str(_field(payload, "access_key_id")),
            secret_access_key=Secret(str(_field(payload, "secret_access_key"))),
            session_token=None if token is None else Secret(token),
        )
    return AwsRoleCredentials(
        role_arn=str(_field(payload, "role_arn")),
        external_id=Secret(str(_field(payload, "external_id"))),
    )


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
    if isinstance(credentials, AwsAccessKeyCredentials):
        register_secrets(credentials.secret_access_key)
        if credentials.session_token is not None:
            register_secrets(credentials.session_token)
    else:
        register_secrets(credentials.external_id)
    return credentials
