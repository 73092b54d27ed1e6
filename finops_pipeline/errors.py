"""Typed errors. Every message says what happened and what to do, and carries no secret."""

from __future__ import annotations


class FinopsError(Exception):
    """Base class for every error this project raises on purpose."""

    #: A permanent error will fail the same way on retry (bad key, access denied, ...).
    permanent: bool = True


# --- configuration -------------------------------------------------------------------------


class ConfigurationError(FinopsError):
    """A setting is missing or malformed."""


# --- credentials and keys ------------------------------------------------------------------


class CredentialError(FinopsError):
    """Credentials could not be decrypted or used."""


class MissingKeyError(CredentialError):
    """No encryption key is configured."""


class MalformedKeyError(CredentialError):
    """The configured encryption key is not 32 bytes in an accepted encoding."""


class WrongKeyError(CredentialError):
    """The ciphertext names a key that is not in the key ring."""


class TamperedCiphertextError(CredentialError):
    """Authentication failed: the blob, its header or its row binding was altered."""


class UnknownCiphertextVersionError(CredentialError):
    """The ciphertext carries a format version this release does not understand."""


# --- providers -----------------------------------------------------------------------------


class ProviderError(FinopsError):
    """A cloud provider call failed."""


class UnsupportedProviderError(ProviderError):
    """The account's provider has no collector yet."""


class ProviderAccessDeniedError(ProviderError):
    """The provider refused the credentials or the permission."""


class ProviderThrottledError(ProviderError):
    """The provider kept throttling after every retry."""

    permanent = False


class ProviderDataError(ProviderError):
    """The provider returned data that does not have the expected shape."""


class BillExpiredError(ProviderError):
    """The requested window is older than the provider keeps."""


class PaginationRestartError(ProviderError):
    """Paging kept failing part-way, even after restarting from the first page."""

    permanent = False


# --- database ------------------------------------------------------------------------------


class DatabaseError(FinopsError):
    """The database could not be reached or a load failed; stored data is unchanged."""

    permanent = False


class EmbeddedPostgresError(DatabaseError):
    """The embedded PostgreSQL server could not be started or stopped."""

    permanent = True


class EmbeddedServerInUseError(EmbeddedPostgresError):
    """The embedded server was not stopped because live processes still use it."""


class AccountNotFoundError(FinopsError):
    """No cloud account has the given id."""
