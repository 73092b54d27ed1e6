"""The real ``google.cloud.recommender_v1.RecommenderClient`` over REST, and its errors.

The client is built from the project's service-account key only (never ambient credentials),
with the key's token endpoint override like BigQuery's, and ``transport="rest"``: requests go
through google-auth's ``AuthorizedSession`` (``requests``), where the sandbox's adapter sits
for sandbox accounts. Each (recommender, location) list is paged to its end; every page is a
request, counted in ``FetchedRecommendations.requests`` (Recommender is free: no paid requests).

Every failure leaves as a typed, one-line error built from the error's *reason* and status,
never from its text (google-auth's can quote the token endpoint's answer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests.exceptions
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_exceptions
from google.cloud import recommender_v1
from google.oauth2 import service_account

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.gcp.client import quiet_gcp_sdk_loggers
from finops_pipeline.providers.gcp.errors import (
    GcpThrottledError,
    GcpTransientError,
    RecommenderAccessDeniedError,
    RecommenderApiDisabledError,
    RecommenderDataError,
    RecommenderLocationError,
    ServiceAccountKeyError,
)
from finops_pipeline.providers.gcp.recommendations import (
    COST_RECOMMENDERS,
    OPEN_STATES_FILTER,
    PAGE_SIZE,
    CostRecommender,
    RecommenderLocations,
    RecommenderQuery,
    parse_pages,
    plan_queries,
)
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.providers.gcp.spec import RECOMMENDER_SANDBOX_HOST, SANDBOX_HOST
from finops_pipeline.providers.recommenders import FetchedRecommendations

_log = logging.getLogger(__name__)

RECOMMENDER_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
RECOMMENDER_SERVICE = "recommender.googleapis.com"
DEFAULT_RETRY_DEADLINE_SECONDS = 120.0
_MAX_PAGES = 1000
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_RETRIED = (
    api_exceptions.TooManyRequests,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
    api_exceptions.DeadlineExceeded,
    requests.exceptions.ConnectionError,
)


def recommender_endpoint_for(bigquery_endpoint: str | None) -> str | None:
    """Where a project's Recommender requests go, given its export's BigQuery endpoint.

    Google's own endpoint for real exports, even those behind a private BigQuery endpoint; a
    local double (a loopback endpoint) serves both APIs; the sandbox's reserved BigQuery host
    maps to its reserved Recommender host, which only the sandbox's adapter answers.
    """
    if not bigquery_endpoint:
        return None
    parts = urlsplit(bigquery_endpoint)
    if (parts.hostname or "").lower() == SANDBOX_HOST:
        return f"https://{RECOMMENDER_SANDBOX_HOST}"
    if (parts.hostname or "").lower() in _LOOPBACK_HOSTS:
        return bigquery_endpoint
    return None


def build_recommender_client(
    key: ServiceAccountKey,
    *,
    api_endpoint: str | None = None,
    token_uri: str | None = None,
    client_hook: Callable[[Any, str | None], None] | None = None,
) -> recommender_v1.RecommenderClient:
    """A REST RecommenderClient authenticating with exactly this key.

    ``client_hook`` (the registry's) sees the client and its endpoint before first use.
    """
    quiet_gcp_sdk_loggers()
    try:
        credentials = service_account.Credentials.from_service_account_info(
            key.service_account_info(token_uri=token_uri), scopes=RECOMMENDER_SCOPES
        )
    except (ValueError, KeyError, TypeError):
        # `from None`: the parser's message can quote parts of the key.
        raise ServiceAccountKeyError(
            f"The service-account key of {key.client_email} could not be loaded (its private "
            "key is unreadable). Create a new JSON key and enter the whole file."
        ) from None
    client = recommender_v1.RecommenderClient(
        credentials=credentials,
        transport="rest",
        client_options={"api_endpoint": api_endpoint} if api_endpoint else None,
    )
    if client_hook is not None:
        client_hook(client, api_endpoint)
    return client


def _page_as_json(page: Any) -> dict[str, Any]:
    """A ListRecommendationsResponse as the REST JSON it was parsed from (camelCase names,
    enum names, int64 as strings, defaults left out)."""
    return dict(
        recommender_v1.ListRecommendationsResponse.to_dict(
            page,
            use_integers_for_enums=False,
            preserving_proto_field_name=False,
            always_print_fields_with_no_presence=False,
        )
    )


class RecommenderReader:
    """Lists one project's cost recommendations with a RecommenderClient."""

    def __init__(
        self,
        client: recommender_v1.RecommenderClient,
        *,
        client_email: str,
        retry_deadline_seconds: float = DEFAULT_RETRY_DEADLINE_SECONDS,
    ) -> None:
        self._client = client
        self.client_email = client_email
        self._retry = api_retry.Retry(
            predicate=api_retry.if_exception_type(*_RETRIED),
            initial=1.0,
            maximum=30.0,
            multiplier=2.0,
            timeout=retry_deadline_seconds,
        )

    def __repr__(self) -> str:
        return f"RecommenderReader(as={self.client_email!r})"

    def close(self) -> None:
        self._client.transport.close()

    def list_pages(self, query: RecommenderQuery) -> tuple[list[dict[str, Any]], int]:
        """Every page of one list (open recommendations only), and the requests it took."""
        pages: list[dict[str, Any]] = []
        tokens: set[str] = set()
        with self._translated(query):
            pager = self._client.list_recommendations(
                request=recommender_v1.ListRecommendationsRequest(
                    parent=query.parent, filter=OPEN_STATES_FILTER, page_size=PAGE_SIZE
                ),
                retry=self._retry,
            )
            for page in pager.pages:
                pages.append(_page_as_json(page))
                token = page.next_page_token
                if token and (token in tokens or len(pages) >= _MAX_PAGES):
                    raise RecommenderDataError(
                        f"GCP Recommender repeated a page token listing {query.parent}; "
                        "stopped to avoid an endless loop. Retry later."
                    )
                tokens.add(token)
        return pages, len(pages)

    def fetch(
        self,
        project: str,
        locations: RecommenderLocations,
        recommenders: Sequence[CostRecommender] = COST_RECOMMENDERS,
    ) -> FetchedRecommendations:
        """The project's complete set of open cost recommendations, or a typed error."""
        fetched = FetchedRecommendations()
        requests_made = 0
        for query in plan_queries(project, locations, recommenders):
            pages, count = self.list_pages(query)
            requests_made += count
            fetched.records.extend(
                parse_pages(pages, project=project, recommender=query.recommender)
            )
        # Free: counted (the asset's ``gcp_requests``), never paid requests.
        fetched.requests = requests_made
        _log.info(
            "GCP Recommender for %s: %d requests, %d open cost recommendations",
            project,
            requests_made,
            len(fetched.records),
        )
        return fetched

    @contextmanager
    def _translated(self, query: RecommenderQuery) -> Iterator[None]:
        try:
            yield
        except FinopsError:
            raise
        except Exception as exc:  # every SDK failure becomes a typed error
            translated = translate_recommender_error(exc, query, client_email=self.client_email)
            _log.info("GCP Recommender failed on %s: %s", query.parent, type(translated).__name__)
            raise translated from None


def _consumer(exc: api_exceptions.GoogleAPICallError, fallback: str) -> str:
    consumer = (exc.metadata or {}).get("consumer") if exc.metadata else None
    if isinstance(consumer, str) and consumer.startswith("projects/"):
        return consumer.removeprefix("projects/")
    return fallback


def translate_recommender_error(
    exc: BaseException, query: RecommenderQuery, *, client_email: str
) -> FinopsError:
    """A typed, one-line error for a Recommender or google-auth failure, quoting none of its
    text."""
    where = f"{query.recommender.recommender_id} in {query.project} ({query.location})"
    if isinstance(exc, auth_exceptions.RefreshError):
        if getattr(exc, "retryable", False):
            return GcpTransientError(
                "Google's token endpoint failed temporarily; the refresh will retry."
            )
        return ServiceAccountKeyError(
            f"Google refused the service-account key of {client_email}: the key may be "
            "deleted, disabled or belong to another account. Create a new JSON key and update "
            "the project's credentials."
        )
    if isinstance(exc, auth_exceptions.TransportError | requests.exceptions.RequestException):
        return GcpTransientError(
            "GCP Recommender or Google's token endpoint could not be reached; the refresh "
            "will retry."
        )
    if isinstance(exc, api_exceptions.RetryError):
        if exc.cause is not None and not isinstance(exc.cause, api_exceptions.RetryError):
            return translate_recommender_error(exc.cause, query, client_email=client_email)
        return GcpTransientError(
            f"GCP Recommender kept failing on {where} until the retry deadline; retry later."
        )
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return ServiceAccountKeyError(
            f"The service-account key of {client_email} could not be used to sign in. Create "
            "a new JSON key and update the project's credentials."
        )
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reason = exc.reason
        if reason in {"SERVICE_DISABLED", "API_DISABLED"}:
            consumer = _consumer(exc, query.project)
            return RecommenderApiDisabledError(
                f"The Recommender API is not enabled in project {consumer}: run `gcloud "
                f"services enable {RECOMMENDER_SERVICE} --project {consumer}` (no "
                "recommendations were changed for this project)."
            )
        if isinstance(exc, api_exceptions.Forbidden):
            return RecommenderAccessDeniedError(
                f"GCP Recommender denied {client_email} listing {where}: grant it "
                f"roles/recommender.viewer (or {query.recommender.viewer_role}) on project "
                f"{query.project}."
            )
        if isinstance(exc, api_exceptions.Unauthorized):
            return ServiceAccountKeyError(
                f"GCP Recommender did not accept the credentials of {client_email}. Create a "
                "new JSON key and update the project's credentials."
            )
        if isinstance(exc, api_exceptions.NotFound):
            return RecommenderLocationError(
                f"GCP Recommender has no {where}: check that project {query.project} exists "
                "and, if FINOPS_GCP_RECOMMENDER_LOCATIONS is set, that it lists real zones and "
                "regions."
            )
        if isinstance(exc, api_exceptions.TooManyRequests):
            return GcpThrottledError(
                f"GCP Recommender kept refusing requests for {where} for quota "
                f"({reason or 'too many requests'}); the refresh will retry later."
            )
        if isinstance(exc, api_exceptions.ServerError):
            return GcpTransientError(
                f"GCP Recommender failed on its side listing {where} (HTTP {exc.code}); the "
                "refresh will retry."
            )
        if isinstance(exc, api_exceptions.BadRequest):
            return RecommenderLocationError(
                f"GCP Recommender rejected the request for {where} ({reason or 'bad request'}): "
                "check FINOPS_GCP_RECOMMENDER_LOCATIONS, if it is set."
            )
        return RecommenderDataError(
            f"GCP Recommender refused listing {where} (HTTP {exc.code}, "
            f"{reason or 'no reason given'})."
        )
    if isinstance(exc, ValueError | TypeError | KeyError):
        # The REST transport could not parse the answer into a ListRecommendationsResponse.
        return RecommenderDataError(
            f"GCP Recommender sent an answer for {where} that is not a recommendations list; "
            "nothing was stored for this project."
        )
    if isinstance(exc, ConnectionError | TimeoutError):
        return GcpTransientError("GCP Recommender could not be reached; the refresh will retry.")
    return RecommenderDataError(f"Listing {where} failed unexpectedly ({type(exc).__name__}).")
