"""A synthetic Entra ID and Cost Management Query endpoint: HTTP request in, HTTP response out.

Pure request handling with no HTTP library: :mod:`.transport` feeds it what azure-core sends.
It answers:

* Entra ID's ``/{tenant}/v2.0/.well-known/openid-configuration`` and ``/{tenant}/oauth2/v2.0/token``
  (client credentials; a wrong secret is ``AADSTS7000215``), issuing signed opaque tokens;
* ``POST {scope}/providers/Microsoft.CostManagement/query`` for subscription scopes: bearer token
  and audience checked, 404 for a subscription the tenant does not have, 403 without the
  Cost Management Reader role, 400 for a body it would not run. It honours ``type``,
  ``timePeriod`` (``to`` inclusive), Daily granularity, the aggregation names and up to two
  groupings (``ServiceName``, ``Meter``), pages ``page_size`` rows at a time (or ``$top``),
  and links pages with a ``nextLink`` whose ``$skiptoken`` is bound to the body: a changed body
  on a later page is refused with a 400;
* ``GET /subscriptions/{id}/providers/Microsoft.Advisor/recommendations`` (``$filter=Category eq
  'Cost'``): the subscription's cost recommendations from :mod:`.advisor`, ``advisor_page_size``
  (or ``$top``) a page, linked by a signed ``$skiptoken``; the same 404 and 403 as the Query.

Two deliberate differences from the real service: a Daily window longer than one month is
refused with a 400, where the service truncates it silently (so a client bug shows as an error,
not as missing days), and QPU are charged per request as the months of data the window spans.
It also injects 429s at ``throttle_rate`` carrying the Cost Management retry-after headers, and
counts every request and the QPU it consumed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, parse_qs, quote, urlsplit

from finops_pipeline.providers.aws.sandbox.generator import Pull
from finops_pipeline.providers.aws.sandbox.hook import read_generation
from finops_pipeline.providers.azure.query import DEFAULT_GROUPING, query_keeps_whole_window
from finops_pipeline.providers.azure.sandbox.advisor import (
    cost_recommendations as advisor_recommendations,
)
from finops_pipeline.providers.azure.sandbox.catalogue import (
    DEFAULT_TENANTS,
    SandboxSubscription,
    SandboxTenant,
    sandbox_client_secret,
)
from finops_pipeline.providers.azure.sandbox.generator import (
    DEFAULT_SEED,
    AzureCostRow,
    AzureSandboxGenerator,
)
from finops_pipeline.providers.azure.spec import (
    SANDBOX_AUTHORITY_HOST_NAME,
    SANDBOX_RESOURCE_MANAGER_HOST,
)
from finops_pipeline.providers.azure.throttling import QPU_CONSUMED_HEADER, QPU_REMAINING_HEADER
from finops_pipeline.sync.ranges import DateRange

SANDBOX_RESOURCE_MANAGER = f"https://{SANDBOX_RESOURCE_MANAGER_HOST}"
SANDBOX_AUTHORITY_HOST = f"https://{SANDBOX_AUTHORITY_HOST_NAME}"
DEFAULT_PAGE_SIZE = 5000
MAX_TOP = 5000
#: The waits a sandbox 429 names, per header; the largest is the entity one.
DEFAULT_THROTTLE_WAITS: Mapping[str, float] = {
    "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": 2.0,
    "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": 7.0,
    "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after": 4.0,
}
HOURLY_QPU_QUOTA = 600
_QUERY_SUFFIX = "/providers/microsoft.costmanagement/query"
_QUERY_ACTION = "Microsoft.CostManagement/query/action"
_ADVISOR_SUFFIX = "/providers/microsoft.advisor/recommendations"
_ADVISOR_ACTION = "Microsoft.Advisor/recommendations/read"
#: The filters the sandbox's Advisor list understands (the collector sends the Cost one).
_ADVISOR_FILTERS = frozenset({"", "Category eq 'Cost'"})
_ADVISOR_SKIP_DOMAIN = b"finops-azure-sandbox-advisor-skiptoken-v1"
DEFAULT_ADVISOR_PAGE_SIZE = 25
_AGGREGATABLE = frozenset({"Cost", "PreTaxCost", "CostUSD", "UsageQuantity"})
_GROUPABLE = frozenset(DEFAULT_GROUPING)
_TOKEN_DOMAIN = b"finops-azure-sandbox-token-v1"
_SKIP_DOMAIN = b"finops-azure-sandbox-skiptoken-v1"


@dataclass(frozen=True)
class SandboxResponse:
    """What the sandbox answers: status, headers and the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass(frozen=True)
class AzureSandboxSettings:
    """How the sandbox behaves."""

    seed: int = DEFAULT_SEED
    page_size: int = DEFAULT_PAGE_SIZE
    #: Share of query requests answered with a 429, chosen deterministically from the seed.
    throttle_rate: float = 0.0
    throttle_waits: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_THROTTLE_WAITS)
    )
    #: "Today" for the sandbox; None: the real UTC date at each request.
    as_of: dt.date | None = None
    #: Counts re-reads: open months' values move from one generation to the next. None: the
    #: shared sandbox pull generation (``finops demo`` advances it), read at each request.
    generation: int | None = 0
    #: Return the columns in a shuffled (but deterministic) order.
    shuffle_columns: bool = False
    #: Advisor recommendations per list page (``$top`` may ask for fewer).
    advisor_page_size: int = DEFAULT_ADVISOR_PAGE_SIZE
    resource_manager: str = SANDBOX_RESOURCE_MANAGER
    authority_host: str = SANDBOX_AUTHORITY_HOST

    def __post_init__(self) -> None:
        if self.page_size < 1 or self.advisor_page_size < 1:
            raise ValueError("page sizes must be at least 1")
        if not 0.0 <= self.throttle_rate <= 1.0:
            raise ValueError("throttle_rate must be between 0 and 1")

    def pull(self) -> Pull:
        generation = self.generation if self.generation is not None else read_generation()
        return Pull(as_of=self.as_of or dt.datetime.now(dt.UTC).date(), generation=generation)


@dataclass
class SandboxCounts:
    """What the sandbox answered. ``queries`` counts first pages, ``pages`` every 200/204."""

    requests: int = 0
    #: Requests to Entra ID (discovery and tokens); the rest went to Resource Manager.
    identity_requests: int = 0
    token_requests: int = 0
    queries: int = 0
    pages: int = 0
    throttled: int = 0
    rejected: int = 0
    #: Advisor list pages answered (each a request; not billed, no QPU).
    advisor_pages: int = 0
    #: Advisor list requests per subscription id, answered or refused.
    advisor_requests_by_subscription: Counter[str] = field(default_factory=Counter)
    qpu_consumed: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    rows_by_query: list[int] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)


class SandboxError(Exception):
    """An ARM error the sandbox answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class AzureCostManagementSandbox:
    """Entra ID and Cost Management for the sandbox tenants; thread-safe counters."""

    def __init__(
        self,
        settings: AzureSandboxSettings | None = None,
        tenants: Sequence[SandboxTenant] = DEFAULT_TENANTS,
    ) -> None:
        self.settings = settings or AzureSandboxSettings()
        self.tenants = {tenant.tenant_id: tenant for tenant in tenants}
        self.generator = AzureSandboxGenerator(self.settings.seed)
        # The two cost types of one window read the same days: generate each day once.
        self._day_rows = lru_cache(maxsize=256)(self.generator.day_rows)
        self.counts = SandboxCounts()
        #: Every Query body received, in order, and every token issued (for leak tests).
        self.seen_bodies: list[bytes] = []
        self.issued_tokens: list[str] = []
        self._lock = threading.Lock()
        self._arm = urlsplit(self.settings.resource_manager).netloc.lower()
        self._login = urlsplit(self.settings.authority_host).netloc.lower()
        self._token_key = hmac.new(
            _TOKEN_DOMAIN, str(self.settings.seed).encode(), "sha256"
        ).digest()

    @property
    def base_urls(self) -> tuple[str, str]:
        return (self.settings.resource_manager, self.settings.authority_host)

    def advance_generation(self) -> int:
        """Start a new pull: open months' values are restated."""
        generation = self.settings.pull().generation + 1
        self.settings = replace(self.settings, generation=generation)
        return generation

    # --- dispatch --------------------------------------------------------------------------

    def handle(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None
    ) -> SandboxResponse:
        """Answer one HTTP request."""
        parts = urlsplit(url)
        raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            self.counts.requests += 1
        host = parts.netloc.lower()
        if parts.scheme != "https":
            response = _arm_error(400, "HttpsRequired", "Only https is served.")
        elif host == self._login:
            with self._lock:
                self.counts.identity_requests += 1
            response = self._identity(method, parts.path, raw)
        elif host == self._arm:
            response = self._resource_manager(method, parts, lowered, raw)
        else:
            response = _arm_error(404, "NotFound", "Unknown host.")
        with self._lock:
            self.counts.by_status[response.status] += 1
        return response

    # --- Entra ID ----------------------------------------------------------------------------

    def _identity(self, method: str, path: str, body: bytes) -> SandboxResponse:
        segments = [segment for segment in path.split("/") if segment]
        tenant = self.tenants.get(segments[0].lower()) if segments else None
        base = f"{self.settings.authority_host}/{segments[0] if segments else ''}"
        if method == "GET" and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            if tenant is None:
                return _aad_error(400, "invalid_tenant", 90002, "Tenant not found.")
            return _json(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                },
            )
        if method == "POST" and segments[1:] == ["oauth2", "v2.0", "token"]:
            with self._lock:
                self.counts.token_requests += 1
            return self._token(tenant, body)
        return _aad_error(404, "not_found", 90000, "Unknown endpoint.")

    def _token(self, tenant: SandboxTenant | None, body: bytes) -> SandboxResponse:
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8")).items()}
        if tenant is None:
            return _aad_error(400, "invalid_request", 90002, "Tenant not found.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003, "Use client_credentials.")
        if form.get("client_id") != tenant.client_id:
            return _aad_error(
                400, "unauthorized_client", 700016, "Application not found in the directory."
            )
        expected = sandbox_client_secret(tenant).reveal()
        if not hmac.compare_digest(form.get("client_secret", "").encode(), expected.encode()):
            return _aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID.",
            )
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return _aad_error(400, "invalid_scope", 1002012, "The scope must end in /.default.")
        audience = scope[: -len("/.default")]
        claims = {"tid": tenant.tenant_id, "appid": tenant.client_id, "aud": audience}
        token = self._sign(claims)
        with self._lock:
            self.issued_tokens.append(token)
        return _json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    def _sign(self, claims: dict[str, str]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(claims, sort_keys=True).encode()).decode()
        signature = hmac.new(self._token_key, payload.encode(), "sha256").hexdigest()
        return f"sbx.{payload}.{signature}"

    def _verify(self, authorization: str | None) -> dict[str, str]:
        if not authorization or not authorization.startswith("Bearer "):
            raise SandboxError(401, "AuthenticationFailed", "Authentication failed.")
        token = authorization[len("Bearer ") :]
        try:
            prefix, payload, signature = token.split(".")
        except ValueError:
            raise SandboxError(401, "InvalidAuthenticationToken", "Invalid token.") from None
        expected = hmac.new(self._token_key, payload.encode(), "sha256").hexdigest()
        if prefix != "sbx" or not hmac.compare_digest(signature, expected):
            raise SandboxError(401, "InvalidAuthenticationToken", "Invalid token.")
        claims = json.loads(base64.urlsafe_b64decode(payload))
        if claims.get("aud") != self.settings.resource_manager:
            raise SandboxError(
                401, "InvalidAuthenticationTokenAudience", "The token's audience is not this cloud."
            )
        return claims

    # --- Resource Manager ------------------------------------------------------------------

    def _resource_manager(
        self, method: str, parts: SplitResult, headers: Mapping[str, str], body: bytes
    ) -> SandboxResponse:
        try:
            claims = self._verify(headers.get("authorization"))
            if method == "GET" and parts.path.lower().endswith(_ADVISOR_SUFFIX):
                scope = parts.path[: -len(_ADVISOR_SUFFIX)]
                subscription = self._subscription(scope, claims["tid"], _ADVISOR_ACTION)
                if self._throttled():
                    return self._throttle_response()
                params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                return self._advisor(scope, subscription, params)
            if method != "POST" or not parts.path.lower().endswith(_QUERY_SUFFIX):
                raise SandboxError(
                    404, "NotFound", "The sandbox serves Cost Management queries only."
                )
            scope = parts.path[: -len(_QUERY_SUFFIX)]
            subscription = self._subscription(scope, claims["tid"])
            if self._throttled():
                return self._throttle_response()
            params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            return self._query(scope, subscription, params, body)
        except SandboxError as error:
            if error.status == 400:
                with self._lock:
                    self.counts.rejected += 1
                    self.counts.rejections.append(error.message)
            return _arm_error(error.status, error.code, error.message)

    def _subscription(
        self, scope: str, tenant_id: str, action: str = _QUERY_ACTION
    ) -> SandboxSubscription:
        segments = [segment for segment in scope.split("/") if segment]
        if len(segments) != 2 or segments[0].lower() != "subscriptions":
            raise SandboxError(400, "BadRequest", "The sandbox serves subscription scopes only.")
        tenant = self.tenants[tenant_id]
        subscription = tenant.subscription(segments[1])
        if subscription is None:
            raise SandboxError(
                404, "SubscriptionNotFound", f"The subscription '{segments[1]}' could not be found."
            )
        if not subscription.reader:
            raise SandboxError(
                403,
                "AuthorizationFailed",
                f"The client '{tenant.client_id}' does not have authorization to perform action "
                f"'{action}' over scope '{scope}'.",
            )
        return subscription

    def _throttled(self) -> bool:
        rate = self.settings.throttle_rate
        if rate <= 0.0:
            return False
        with self._lock:
            ordinal = self.counts.requests
        digest = hashlib.sha256(f"{self.settings.seed}:throttle:{ordinal}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < rate

    def _throttle_response(self) -> SandboxResponse:
        with self._lock:
            self.counts.throttled += 1
        response = _arm_error(429, "429", "Too many requests. Please retry.")
        for name, seconds in self.settings.throttle_waits.items():
            response.headers[name] = f"{seconds:g}"
        # Resource Manager's own throttling (Advisor) names its wait in Retry-After.
        response.headers.setdefault(
            "retry-after", f"{max(self.settings.throttle_waits.values(), default=1):g}"
        )
        return response

    def _query(
        self, scope: str, subscription: SandboxSubscription, params: Mapping[str, str], body: bytes
    ) -> SandboxResponse:
        try:
            document = json.loads(body)
        except ValueError:
            raise SandboxError(400, "BadRequest", "The request body is not JSON.") from None
        query = _validate(document)
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(f"{scope.lower()}\n{canonical}".encode()).hexdigest()
        offset = 0
        if "$skiptoken" in params:
            offset = self._read_skiptoken(params["$skiptoken"], fingerprint)
        try:
            top = int(params.get("$top", MAX_TOP))
        except ValueError:
            raise SandboxError(400, "BadRequest", "$top must be a number.") from None
        if not 1 <= top <= MAX_TOP:
            raise SandboxError(400, "BadRequest", f"$top must be between 1 and {MAX_TOP}.")
        with self._lock:
            self.seen_bodies.append(body)
        columns, rows = self._rows(subscription, query)
        page_size = min(top, self.settings.page_size)
        page_rows = rows[offset : offset + page_size]
        next_link = None
        if offset + page_size < len(rows):
            next_params = {key: value for key, value in params.items() if key != "$skiptoken"}
            next_params["$skiptoken"] = self._skiptoken(fingerprint, offset + page_size)
            next_link = (
                f"{self.settings.resource_manager}{scope}/providers/Microsoft.CostManagement/query?"
                + "&".join(f"{key}={quote(value, safe='')}" for key, value in next_params.items())
            )
        months = math.ceil(query.window.days / 31)
        with self._lock:
            self.counts.pages += 1
            if offset == 0:
                self.counts.queries += 1
                self.counts.rows_by_query.append(len(rows))
            self.counts.qpu_consumed += months
            remaining = max(HOURLY_QPU_QUOTA - self.counts.qpu_consumed, 0)
        headers = {
            QPU_CONSUMED_HEADER: str(months),
            QPU_REMAINING_HEADER: str(remaining),
            "x-ms-request-id": hashlib.sha256(f"{fingerprint}:{offset}".encode()).hexdigest()[:32],
        }
        if not rows:
            return SandboxResponse(204, headers)
        text = _result_text(scope, columns, page_rows, next_link)
        headers["content-type"] = "application/json; charset=utf-8"
        return SandboxResponse(200, headers, text.encode("utf-8"))

    def _advisor(
        self, scope: str, subscription: SandboxSubscription, params: Mapping[str, str]
    ) -> SandboxResponse:
        """One page of ``GET {subscription}/providers/Microsoft.Advisor/recommendations``."""
        with self._lock:
            self.counts.advisor_requests_by_subscription[subscription.subscription_id] += 1
        if not params.get("api-version"):
            raise SandboxError(400, "MissingApiVersionParameter", "api-version is required.")
        query_filter = params.get("$filter", "")
        if query_filter not in _ADVISOR_FILTERS:
            raise SandboxError(400, "BadRequest", "The sandbox filters by Category eq 'Cost'.")
        try:
            top = int(params.get("$top", self.settings.advisor_page_size))
        except ValueError:
            raise SandboxError(400, "BadRequest", "$top must be a number.") from None
        if top < 1:
            raise SandboxError(400, "BadRequest", "$top must be positive.")
        pull = self.settings.pull()
        bound = f"{subscription.subscription_id}|{query_filter}|{pull.as_of}|{pull.generation}"
        offset = 0
        token = params.get("$skiptoken") or params.get("$skipToken")
        if token:
            offset = self._read_advisor_skiptoken(token, bound)
        items = advisor_recommendations(self.settings.seed, subscription, pull)
        size = min(top, self.settings.advisor_page_size)
        page = items[offset : offset + size]
        document: dict[str, Any] = {"value": page}
        if offset + size < len(items):
            payload = f"{bound}:{offset + size}"
            signature = hmac.new(_ADVISOR_SKIP_DOMAIN, payload.encode(), "sha256").hexdigest()
            next_token = base64.urlsafe_b64encode(f"{payload}:{signature[:16]}".encode()).decode()
            query = {"api-version": params["api-version"], "$skiptoken": next_token}
            if query_filter:
                query["$filter"] = query_filter
            document["nextLink"] = (
                f"{self.settings.resource_manager}{scope}/providers/Microsoft.Advisor/"
                "recommendations?"
                + "&".join(f"{key}={quote(value, safe='')}" for key, value in query.items())
            )
        with self._lock:
            self.counts.advisor_pages += 1
        return _json(200, document)

    def _read_advisor_skiptoken(self, token: str, bound: str) -> int:
        try:
            text = base64.urlsafe_b64decode(token).decode()
            payload, signature = text.rsplit(":", 1)
            fingerprint, offset = payload.rsplit(":", 1)
            expected = hmac.new(_ADVISOR_SKIP_DOMAIN, payload.encode(), "sha256").hexdigest()
            valid = hmac.compare_digest(signature, expected[:16]) and fingerprint == bound
            position = int(offset)
        except ValueError:
            raise SandboxError(400, "BadRequest", "Invalid $skiptoken.") from None
        if not valid:
            raise SandboxError(400, "BadRequest", "Invalid or expired $skiptoken.")
        return position

    def _skiptoken(self, fingerprint: str, offset: int) -> str:
        payload = f"{fingerprint}:{offset}"
        signature = hmac.new(_SKIP_DOMAIN, payload.encode(), "sha256").hexdigest()[:16]
        return base64.urlsafe_b64encode(f"{payload}:{signature}".encode()).decode()

    def _read_skiptoken(self, token: str, fingerprint: str) -> int:
        try:
            bound, offset, signature = base64.urlsafe_b64decode(token).decode().split(":")
            expected = hmac.new(_SKIP_DOMAIN, f"{bound}:{offset}".encode(), "sha256").hexdigest()
            valid = hmac.compare_digest(signature, expected[:16])
            position = int(offset)
        except ValueError:
            raise SandboxError(400, "BadRequest", "Invalid $skiptoken.") from None
        if not valid:
            raise SandboxError(400, "BadRequest", "Invalid $skiptoken.")
        if bound != fingerprint:
            raise SandboxError(
                400,
                "BadRequest",
                "The request body of a nextLink must be identical to the query that returned it.",
            )
        return position

    def _rows(
        self, subscription: SandboxSubscription, query: _Query
    ) -> tuple[list[str], list[list[Any]]]:
        pull = self.settings.pull()
        groups: dict[tuple[Any, ...], list[Decimal]] = {}
        for offset in range(query.window.days):
            day = query.window.start + dt.timedelta(days=offset)
            usage_date = int(day.strftime("%Y%m%d"))
            for row in self._day_rows(subscription.subscription_id, day, pull):
                cost = row.actual if query.cost_type == "ActualCost" else row.amortized
                if cost is None:
                    continue
                key = (
                    usage_date,
                    *(_dimension(row, name) for name in query.grouping),
                )
                sums = groups.setdefault(key, [Decimal(0), Decimal(0)])
                sums[0] += cost
                sums[1] += row.usage_quantity
        columns = [name for _alias, name in query.aggregation] + [
            "UsageDate",
            *query.grouping,
            "Currency",
        ]
        rows: list[list[Any]] = []
        for key in sorted(groups):
            cost, usage = groups[key]
            values = [usage if name == "UsageQuantity" else cost for _a, name in query.aggregation]
            rows.append([*values, *key, subscription.currency])
        if self.settings.shuffle_columns:
            order = _permutation(len(columns), self.settings.seed)
            columns = [columns[i] for i in order]
            rows = [[row[i] for i in order] for row in rows]
        return columns, rows


@dataclass(frozen=True)
class _Query:
    cost_type: str
    window: DateRange
    aggregation: tuple[tuple[str, str], ...]
    grouping: tuple[str, ...]


def _validate(document: object) -> _Query:
    if not isinstance(document, dict):
        raise SandboxError(400, "BadRequest", "The query definition must be an object.")
    cost_type = document.get("type")
    if cost_type not in ("ActualCost", "AmortizedCost", "Usage"):
        raise SandboxError(400, "BadRequest", f"Invalid query type {cost_type!r}.")
    if document.get("timeframe") != "Custom":
        raise SandboxError(400, "BadRequest", "The sandbox serves timeframe Custom only.")
    period = document.get("timePeriod")
    try:
        start = dt.datetime.fromisoformat(str(period["from"]).replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(str(period["to"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        raise SandboxError(400, "BadRequest", "timePeriod needs ISO 8601 from and to.") from None
    window = DateRange(start.date(), end.date())
    if window.end < window.start:
        raise SandboxError(400, "BadRequest", "timePeriod.from is after timePeriod.to.")
    dataset = document.get("dataset")
    if not isinstance(dataset, dict) or dataset.get("granularity") != "Daily":
        raise SandboxError(400, "BadRequest", "The sandbox serves Daily granularity only.")
    if not query_keeps_whole_window(window):
        raise SandboxError(
            400,
            "BadRequest",
            "Invalid query definition: a Daily query covers at most one month.",
        )
    aggregation = dataset.get("aggregation")
    if not isinstance(aggregation, dict) or not 1 <= len(aggregation) <= 2:
        raise SandboxError(400, "BadRequest", "A query has one or two aggregations.")
    aggregates: list[tuple[str, str]] = []
    for alias, spec in aggregation.items():
        if (
            not isinstance(spec, dict)
            or spec.get("function") != "Sum"
            or spec.get("name") not in _AGGREGATABLE
        ):
            raise SandboxError(400, "BadRequest", f"Invalid aggregation {alias!r}.")
        aggregates.append((alias, spec["name"]))
    grouping = dataset.get("grouping") or []
    if not isinstance(grouping, list) or len(grouping) > 2:
        raise SandboxError(400, "BadRequest", "A query can have up to 2 group by clauses.")
    names: list[str] = []
    for group in grouping:
        if (
            not isinstance(group, dict)
            or group.get("type") != "Dimension"
            or group.get("name") not in _GROUPABLE
        ):
            raise SandboxError(400, "BadRequest", f"Invalid grouping {group!r}.")
        names.append(group["name"])
    if len(set(names)) != len(names):
        raise SandboxError(400, "BadRequest", "Duplicate columns in grouping.")
    return _Query(
        cost_type=cost_type,
        window=window,
        aggregation=tuple(aggregates),
        grouping=tuple(names),
    )


def _dimension(row: AzureCostRow, name: str) -> str:
    return row.service if name == "ServiceName" else row.meter


def _permutation(size: int, seed: int) -> list[int]:
    order = list(range(size))
    order.sort(key=lambda i: hashlib.sha256(f"{seed}:column:{i}".encode()).digest())
    if order == list(range(size)) and size > 1:
        order.reverse()
    return order


def _number(value: Decimal | int) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _result_text(
    scope: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], next_link: str | None
) -> str:
    """The Query result, amounts written as exact JSON numbers."""
    types = {
        "UsageDate": "Number",
        "Cost": "Number",
        "PreTaxCost": "Number",
        "CostUSD": "Number",
        "UsageQuantity": "Number",
    }
    column_text = ",".join(
        json.dumps({"name": name, "type": types.get(name, "String")}) for name in columns
    )
    row_text = ",".join(
        "["
        + ",".join(json.dumps(value) if isinstance(value, str) else _number(value) for value in row)
        + "]"
        for row in rows
    )
    identifier = f"{scope}/providers/Microsoft.CostManagement/query/sandbox"
    return (
        '{"id":' + json.dumps(identifier) + ',"name":"sandbox","type":'
        '"Microsoft.CostManagement/query","location":null,"sku":null,"eTag":null,'
        '"properties":{"nextLink":'
        + json.dumps(next_link)
        + ',"columns":['
        + column_text
        + '],"rows":['
        + row_text
        + "]}}"
    )


def _json(status: int, document: dict[str, Any]) -> SandboxResponse:
    return SandboxResponse(
        status, {"content-type": "application/json; charset=utf-8"}, json.dumps(document).encode()
    )


def _arm_error(status: int, code: str, message: str) -> SandboxResponse:
    return _json(status, {"error": {"code": code, "message": message}})


def _aad_error(status: int, error: str, code: int, description: str) -> SandboxResponse:
    return _json(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
        },
    )
