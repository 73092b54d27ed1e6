"""The real ``google.cloud.bigquery.Client``, built from a service-account key, and its errors.

Every BigQuery client is made in :func:`build_bigquery_client`. An export may name its own API
endpoint (``client_options.api_endpoint``: private service connect, or a local test double) and
token endpoint (the key's ``token_uri``), as AWS accounts name an endpoint URL.

Every failure leaves here as a typed, one-line :class:`~finops_pipeline.errors.FinopsError`
built from the error's *reason*, never from its text: BigQuery's messages may quote the query,
and google-auth's may quote the token endpoint's answer.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests.exceptions
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY
from google.oauth2 import service_account

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.gcp.errors import (
    BillingExportSettingError,
    BillingQueryError,
    BillingTableNotFoundError,
    BytesBilledLimitError,
    GcpAccessDeniedError,
    GcpThrottledError,
    GcpTransientError,
    ServiceAccountKeyError,
)
from finops_pipeline.providers.gcp.query import BillingQuery, QueryParameter
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.providers.gcp.table import (
    BillingExportTable,
    TablePartitioning,
    validate_location,
    validate_project_id,
)

#: The setting that caps the bytes one billing query may bill.
ENV_MAXIMUM_BYTES_BILLED = "FINOPS_GCP_MAXIMUM_BYTES_BILLED"
#: 100 GiB: about $0.61 at the on-demand price of $6.25 per TiB.
DEFAULT_MAXIMUM_BYTES_BILLED = 100 * 1024**3
#: How long one call keeps retrying 5xx, rate limits and network errors.
DEFAULT_RETRY_DEADLINE_SECONDS = 120.0
# Reading a table and running query jobs needs the full BigQuery scope; readonly does not
# allow jobs.insert.
BIGQUERY_SCOPES = ("https://www.googleapis.com/auth/bigquery",)

_CHATTY_LOGGERS = ("google.auth", "google.oauth2", "google.cloud.bigquery", "google.api_core")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{3,40}")

_THROTTLED_REASONS = frozenset({"rateLimitExceeded", "quotaExceeded", "jobRateLimitExceeded"})
_TRANSIENT_REASONS = frozenset(
    {"backendError", "internalError", "badGateway", "jobBackendError", "jobInternalError"}
)
_DENIED_REASONS = frozenset({"accessDenied", "billingNotEnabled", "blocked", "policyViolation"})
_INVALID_REASONS = frozenset({"invalid", "invalidQuery"})

_log = logging.getLogger(__name__)


def quiet_gcp_sdk_loggers() -> None:
    """Keep the Google SDK loggers above DEBUG.

    At DEBUG, google-auth logs each token request with its body in the record's ``extra``, and
    only a few field names are hashed: the signed JWT ``assertion``, which is exchanged for an
    access token, is logged in clear. So DEBUG must never reach these loggers.
    """
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


def _check_endpoint(name: str, url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise BillingExportSettingError(f"The {name} must be an https:// URL.")
    # Plain http would send the bearer token (or the signed assertion) in clear.
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise BillingExportSettingError(
            f"The {name} must use https://; plain http:// is accepted for localhost only."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BillingExportSettingError(
            f"The {name} must be a plain URL, without credentials, query or fragment."
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class BillingExport:
    """Where a billing export lives and how to reach it.

    Attributes:
        table: The export table.
        location: The dataset's location (``US``, ``EU``, ``europe-west1`` ...); jobs run there.
        job_project: The project query jobs run and are billed in (the service account needs
            BigQuery Job User there). Defaults to the table's project.
        api_endpoint: A BigQuery API endpoint replacing ``https://bigquery.googleapis.com``.
        token_uri: An OAuth token endpoint replacing the key's ``token_uri``.
        maximum_bytes_billed: Queries that would bill more fail, without being charged.
    """

    table: BillingExportTable
    location: str
    job_project: str | None = None
    api_endpoint: str | None = None
    token_uri: str | None = None
    maximum_bytes_billed: int = DEFAULT_MAXIMUM_BYTES_BILLED

    def __post_init__(self) -> None:
        validate_location(self.location)
        if self.job_project is not None:
            validate_project_id(self.job_project)
        object.__setattr__(self, "api_endpoint", _check_endpoint("API endpoint", self.api_endpoint))
        object.__setattr__(self, "token_uri", _check_endpoint("token endpoint", self.token_uri))
        if (
            isinstance(self.maximum_bytes_billed, bool)
            or not isinstance(self.maximum_bytes_billed, int)
            or self.maximum_bytes_billed < 1
        ):
            raise BillingExportSettingError(
                f"{ENV_MAXIMUM_BYTES_BILLED} must be a positive whole number of bytes."
            )

    @property
    def billing_project(self) -> str:
        """The project jobs run in."""
        return self.job_project or self.table.project


def maximum_bytes_billed_from_env(environ: Mapping[str, str]) -> int:
    """``FINOPS_GCP_MAXIMUM_BYTES_BILLED``, or the default."""
    text = environ.get(ENV_MAXIMUM_BYTES_BILLED, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAXIMUM_BYTES_BILLED
    try:
        value = int(text)
    except ValueError:
        raise BillingExportSettingError(
            f"{ENV_MAXIMUM_BYTES_BILLED} must be a whole number of bytes, not {text!r}."
        ) from None
    if value < 1:
        raise BillingExportSettingError(f"{ENV_MAXIMUM_BYTES_BILLED} must be positive.")
    return value


@dataclass(frozen=True)
class QueryOutcome:
    """A finished query's rows and what BigQuery says it cost."""

    rows: list[dict[str, Any]]
    bytes_processed: int
    bytes_billed: int
    cache_hit: bool
    job_id: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def build_bigquery_client(
    key: ServiceAccountKey,
    export: BillingExport,
    *,
    client_hook: Callable[[Any, str | None], None] | None = None,
) -> bigquery.Client:
    """A BigQuery client that authenticates with exactly this key (never ambient credentials).

    ``client_hook`` (the registry's, bound with the resources) sees every new client and its
    API endpoint before first use; the sandbox attaches there.
    """
    quiet_gcp_sdk_loggers()
    try:
        credentials = service_account.Credentials.from_service_account_info(
            key.service_account_info(token_uri=export.token_uri), scopes=BIGQUERY_SCOPES
        )
    except (ValueError, KeyError, TypeError):
        # `from None`: the parser's message can quote parts of the key.
        raise ServiceAccountKeyError(
            f"The service-account key of {key.client_email} could not be loaded (its private "
            "key is unreadable). Create a new JSON key and enter the whole file."
        ) from None
    client_options = {"api_endpoint": export.api_endpoint} if export.api_endpoint else None
    client = bigquery.Client(
        project=export.billing_project,
        credentials=credentials,
        location=export.location,
        client_options=client_options,
    )
    if client_hook is not None:
        client_hook(client, export.api_endpoint)
    return client


def _bigquery_parameter(parameter: QueryParameter) -> bigquery.ScalarQueryParameter | Any:
    if parameter.array:
        return bigquery.ArrayQueryParameter(parameter.name, parameter.type, list(parameter.value))
    return bigquery.ScalarQueryParameter(parameter.name, parameter.type, parameter.value)


class BillingExportClient:
    """Runs billing queries against one export, with a bytes cap and typed errors."""

    def __init__(
        self,
        client: bigquery.Client,
        export: BillingExport,
        *,
        client_email: str,
        retry_deadline_seconds: float = DEFAULT_RETRY_DEADLINE_SECONDS,
    ) -> None:
        self._client = client
        self.export = export
        self.client_email = client_email
        self._retry = DEFAULT_RETRY.with_deadline(retry_deadline_seconds)
        self._job_retry = DEFAULT_JOB_RETRY.with_deadline(retry_deadline_seconds)

    @classmethod
    def open(
        cls,
        key: ServiceAccountKey,
        export: BillingExport,
        *,
        retry_deadline_seconds: float = DEFAULT_RETRY_DEADLINE_SECONDS,
        client_hook: Callable[[Any, str | None], None] | None = None,
    ) -> BillingExportClient:
        """Build the BigQuery client for ``key`` and wrap it."""
        return cls(
            build_bigquery_client(key, export, client_hook=client_hook),
            export,
            client_email=key.client_email,
            retry_deadline_seconds=retry_deadline_seconds,
        )

    def __repr__(self) -> str:
        return (
            f"BillingExportClient(table={self.export.table.full_name!r}, as={self.client_email!r})"
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close()

    def table_partitioning(self) -> TablePartitioning:
        """The export table's partitioning, from ``tables.get``."""
        with self._translated("reading the export table's metadata"):
            table = self._client.get_table(self.export.table.full_name, retry=self._retry)
        return TablePartitioning.from_table_resource(table.to_api_repr())

    def _job_config(self, query: BillingQuery, *, dry_run: bool) -> bigquery.QueryJobConfig:
        return bigquery.QueryJobConfig(
            query_parameters=[_bigquery_parameter(parameter) for parameter in query.parameters],
            maximum_bytes_billed=self.export.maximum_bytes_billed,
            use_legacy_sql=False,
            dry_run=dry_run,
            # A cached answer would hide rows the export added since; it is also billed 0.
            use_query_cache=False,
            labels={"application": "finops-pipeline"},
        )

    def run(self, query: BillingQuery) -> QueryOutcome:
        """Run ``query`` to completion and read every row."""
        with self._translated("running the billing query"):
            job = self._client.query(
                query.sql,
                job_config=self._job_config(query, dry_run=False),
                location=self.export.location,
                retry=self._retry,
                job_retry=self._job_retry,
            )
            rows = [dict(row.items()) for row in job.result(retry=self._retry)]
        return QueryOutcome(
            rows=rows,
            bytes_processed=int(job.total_bytes_processed or 0),
            bytes_billed=int(job.total_bytes_billed or 0),
            cache_hit=bool(job.cache_hit),
            job_id=job.job_id,
            notes=query.notes,
        )

    def dry_run(self, query: BillingQuery) -> int:
        """The bytes ``query`` would process; a dry run is free and reads no data."""
        with self._translated("estimating the billing query"):
            job = self._client.query(
                query.sql,
                job_config=self._job_config(query, dry_run=True),
                location=self.export.location,
                retry=self._retry,
                job_retry=None,
            )
        return int(job.total_bytes_processed or 0)

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except FinopsError:
            raise
        except Exception as exc:  # every SDK failure becomes a typed error
            translated = translate_error(exc, self.export, client_email=self.client_email)
            _log.info("BigQuery failed while %s: %s", action, type(translated).__name__)
            raise translated from None


def _first_reason(exc: api_exceptions.GoogleAPICallError) -> str | None:
    for error in exc.errors or ():
        if isinstance(error, Mapping) and isinstance(error.get("reason"), str):
            return error["reason"]
    return None


def _oauth_error_code(exc: auth_exceptions.RefreshError) -> str | None:
    for argument in exc.args[1:]:
        if isinstance(argument, Mapping):
            code = argument.get("error")
            if isinstance(code, str) and _OAUTH_ERROR_CODE.fullmatch(code):
                return code
    return None


def translate_error(exc: BaseException, export: BillingExport, *, client_email: str) -> FinopsError:
    """A typed, one-line error for a BigQuery or google-auth failure, quoting none of its text.

    The *reason* decides, not the HTTP status: the client reports a job that failed on
    ``bytesBilledLimitExceeded`` as a 500, which must not be retried as a server error.
    """
    table = export.table.full_name
    if isinstance(exc, auth_exceptions.RefreshError):
        if getattr(exc, "retryable", False):
            return GcpTransientError(
                "Google's token endpoint failed temporarily; the run will retry."
            )
        code = _oauth_error_code(exc)
        return ServiceAccountKeyError(
            f"Google refused the service-account key of {client_email}"
            f"{f' ({code})' if code else ''}: the key may be deleted, disabled or belong to "
            "another account. Create a new JSON key and update the export's credentials."
        )
    if isinstance(exc, auth_exceptions.TransportError | requests.exceptions.RequestException):
        return GcpTransientError(
            "BigQuery or Google's token endpoint could not be reached; the run will retry."
        )
    if isinstance(exc, api_exceptions.RetryError):
        # The retry deadline ran out; the last error decides what to say.
        if exc.cause is not None and not isinstance(exc.cause, api_exceptions.RetryError):
            cause = translate_error(exc.cause, export, client_email=client_email)
            if not cause.permanent:
                return cause
        return GcpTransientError(
            f"BigQuery kept failing on {table} until the retry deadline; the run will retry."
        )
    if isinstance(exc, TimeoutError | concurrent.futures.TimeoutError):
        return GcpTransientError(
            f"BigQuery did not answer in time for {table}; the run will retry."
        )
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return ServiceAccountKeyError(
            f"The service-account key of {client_email} could not be used to sign in. Create "
            "a new JSON key and update the export's credentials."
        )
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reason = _first_reason(exc)
        if reason == "bytesBilledLimitExceeded":
            return BytesBilledLimitError(
                f"The billing query on {table} would bill more than maximum_bytes_billed "
                f"({export.maximum_bytes_billed:,} bytes, set by {ENV_MAXIMUM_BYTES_BILLED}); "
                "nothing was billed. Raise the setting or sync a shorter range."
            )
        if reason in _THROTTLED_REASONS or isinstance(exc, api_exceptions.TooManyRequests):
            return GcpThrottledError(
                f"BigQuery kept refusing queries on {table} for rate limits or quota "
                f"({reason or 'too many requests'}); the run will retry later."
            )
        if reason in _DENIED_REASONS or isinstance(exc, api_exceptions.Forbidden):
            return GcpAccessDeniedError(
                f"BigQuery denied {client_email} access to {table}: grant it BigQuery Data Viewer "
                f"on the dataset and BigQuery Job User on project {export.billing_project}."
            )
        if isinstance(exc, api_exceptions.Unauthorized):
            return ServiceAccountKeyError(
                f"BigQuery did not accept the credentials of {client_email}. Create a new JSON "
                "key and update the export's credentials."
            )
        if reason == "notFound" or isinstance(exc, api_exceptions.NotFound):
            return BillingTableNotFoundError(
                f"BigQuery found no table {table} in location {export.location}: check the "
                "table name, the dataset's location, and that the billing export is enabled."
            )
        if reason in _INVALID_REASONS or isinstance(exc, api_exceptions.BadRequest):
            return BillingQueryError(
                f"BigQuery rejected the billing query on {table} ({reason or 'bad request'}): "
                "the table does not have the billing export's columns. Check that it is a "
                "standard or detailed Cloud Billing export table."
            )
        if reason in _TRANSIENT_REASONS or isinstance(exc, api_exceptions.ServerError):
            return GcpTransientError(
                f"BigQuery failed on its side while querying {table} "
                f"({reason or exc.code}); the run will retry."
            )
        return BillingQueryError(
            f"BigQuery refused the billing query on {table} (HTTP {exc.code}, "
            f"{reason or 'no reason given'})."
        )
    if isinstance(exc, ConnectionError | TimeoutError):
        return GcpTransientError("BigQuery could not be reached; the run will retry.")
    return BillingQueryError(
        f"The billing query on {table} failed unexpectedly ({type(exc).__name__})."
    )
