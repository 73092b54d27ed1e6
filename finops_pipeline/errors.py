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


class RequestBudgetExceededError(FinopsError):
    """The tenant's monthly paid-request budget would be exceeded; nothing was requested.

    Permanent for this run: a retry in the same month meets the same budget.
    """


class NetworkError(FinopsError):
    """A network connection failed or timed out."""

    permanent = False


# --- turning foreign errors into typed ones ------------------------------------------------

_ENDPOINT_HINT = (
    "Check the endpoint URL (the account's --endpoint-url, FINOPS_CE_ENDPOINT_URL, "
    "FINOPS_STS_ENDPOINT_URL) and network access, then retry."
)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else ""


def typed_error(error: BaseException) -> FinopsError | None:
    """The typed error for an AWS SDK, database or network error; None for anything else.

    Used where such an error would otherwise escape as a traceback (the CLI's last guard). The
    message says what failed and what to check; the caller still redacts secrets.
    """
    if isinstance(error, FinopsError):
        return error
    from botocore.exceptions import BotoCoreError, ClientError

    name = type(error).__name__
    if isinstance(error, BotoCoreError):
        # Connection errors, timeouts and closed connections name the endpoint they tried.
        if getattr(error, "kwargs", {}).get("endpoint_url"):
            unreachable = ProviderError(f"{_first_line(error)} ({name}). {_ENDPOINT_HINT}")
        else:
            unreachable = ProviderError(f"The AWS SDK failed ({name}): {_first_line(error)}")
        unreachable.permanent = False
        return unreachable
    if isinstance(error, ClientError):
        if getattr(error, "operation_name", "") == "GetCostAndUsage":
            from finops_pipeline.providers.aws.paging import translate_client_error

            return translate_client_error(error)
        details = error.response.get("Error", {})
        refused = ProviderError(
            f"AWS answered {getattr(error, 'operation_name', 'the call')} with "
            f"{details.get('Code', 'an error')}: {details.get('Message', '')}".rstrip(": ")
        )
        refused.permanent = False
        return refused
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
