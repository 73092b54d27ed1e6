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


class DatabaseConnectionLostError(DatabaseError):
    """The connection to PostgreSQL dropped mid-transaction (server restart, failover, a
    terminated backend); the server rolled the transaction back."""


class EmbeddedPostgresError(DatabaseError):
    """The embedded PostgreSQL server could not be started or stopped."""

    permanent = True


class EmbeddedServerInUseError(EmbeddedPostgresError):
    """The embedded server was not stopped because live processes still use it."""


class AccountNotFoundError(FinopsError):
    """No cloud account has the given id."""


class NetworkError(FinopsError):
    """A network connection failed or timed out."""

    permanent = False


# --- turning foreign errors into typed ones ------------------------------------------------


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else ""


def typed_database_or_network_error(error: BaseException) -> FinopsError | None:
    """The typed error for a database or network error; None for anything else.

    Cloud SDK errors are each provider's to translate: ``finops_pipeline.providers.typed_error``
    asks the registered providers first, then this. The message says what failed and what to
    check; the caller still redacts secrets.
    """
    if isinstance(error, FinopsError):
        return error
    name = type(error).__name__
    import psycopg
    import sqlalchemy as sa

    if isinstance(error, sa.exc.DBAPIError) and isinstance(error.orig, BaseException):
        error, name = error.orig, type(error.orig).__name__
    if isinstance(error, psycopg.OperationalError | sa.exc.OperationalError):
        return DatabaseError(
            f"The database connection failed ({name}): {_first_line(error)}. Check "
            "DATABASE_URL and that the server is up, then retry."
        )
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return DatabaseError(
            f"The database refused the request ({name}): {_first_line(error)}. The login needs "
            "the finops_pipeline role: GRANT finops_pipeline TO <login> (README, Database roles)."
        )
    if isinstance(error, psycopg.Error):
        return DatabaseError(f"The database refused the request ({name}): {_first_line(error)}")
    import socket

    import urllib3.exceptions

    if isinstance(
        error, ConnectionError | TimeoutError | socket.gaierror | urllib3.exceptions.HTTPError
    ) or (isinstance(error, OSError) and type(error).__module__.startswith("requests")):
        return NetworkError(f"A network call failed ({name}): {_first_line(error)}")
    return None
