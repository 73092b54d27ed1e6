"""A local BigQuery REST double for the real ``google-cloud-bigquery`` client.

Point the client at it with ``client_options={"api_endpoint": sandbox.endpoint}`` and give the
service-account key ``token_uri=sandbox.token_uri``. It serves, over HTTP on 127.0.0.1:

* ``POST /token``: Google's OAuth JWT-bearer grant. The signed assertion is verified against the
  public key of a service account the sandbox created; a wrong key gets ``invalid_grant``.
* ``GET  /bigquery/v2/projects/{p}/datasets/{d}/tables/{t}``: tables.get.
* ``POST /bigquery/v2/projects/{p}/jobs``: jobs.insert (queries, dry runs included). Jobs run
  synchronously and come back DONE; a failed query is a DONE job with ``errorResult``.
* ``GET  /bigquery/v2/projects/{p}/jobs/{id}``: jobs.get; ``POST .../cancel``: jobs.cancel.
* ``POST /bigquery/v2/projects/{p}/queries``: jobs.query; errors come back as HTTP errors.
* ``GET  /bigquery/v2/projects/{p}/queries/{id}``: jobs.getQueryResults, paged by
  ``maxResults``/``pageToken``/``startIndex``.

Every API call needs a bearer token the sandbox issued. A service account may run jobs only in
the projects granted to it (BigQuery Job User) and read only the tables granted to it (BigQuery
Data Viewer); anything else is BigQuery's 403 ``accessDenied``. The SQL runs for real in
:class:`~finops_pipeline.providers.gcp.sandbox.engine.BigQueryEngine`, whose docstring lists the BigQuery
semantics covered. Faults (5xx, rate limits) can be injected for retry tests.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt as google_jwt

from finops_pipeline.providers.gcp.sandbox.engine import (
    BigQueryApiError,
    BigQueryEngine,
    QueryResult,
    TableRef,
    decode_parameters,
)
from finops_pipeline.providers.gcp.sandbox.recommender import (
    RecommenderApiError,
    RecommenderSandbox,
    project_number,
)

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_PAGE_ROWS = 5000
TOKEN_LIFETIME_SECONDS = 3600
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class _ServiceAccount:
    email: str
    public_key_pem: bytes
    job_projects: set[str] = field(default_factory=set)
    readable_tables: set[TableRef] = field(default_factory=set)
    #: Projects where it may list Recommender's recommendations (roles/recommender.viewer).
    recommender_projects: set[str] = field(default_factory=set)


@dataclass
class SandboxJob:
    """One query job as the sandbox ran it."""

    project: str
    job_id: str
    location: str
    query: str
    user_email: str
    result: QueryResult | None
    error: BigQueryApiError | None
    dry_run: bool
    maximum_bytes_billed: int | None
    created_ms: int

    @property
    def bytes_processed(self) -> int:
        return self.result.bytes_processed if self.result else 0

    @property
    def bytes_billed(self) -> int:
        return self.result.bytes_billed if self.result else 0


@dataclass
class _Fault:
    status: int
    reason: str
    path_contains: str
    remaining: int


class BigQuerySandbox:
    """The REST double, its engine, its service accounts and its record of jobs.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self, engine: BigQueryEngine | None = None, *, page_rows: int = DEFAULT_PAGE_ROWS
    ) -> None:
        self.engine = engine or BigQueryEngine()
        self.page_rows = page_rows
        #: GCP Recommender's recommendations.list, served on the same server.
        self.recommender = RecommenderSandbox()
        #: The pull generation recommendations are read at; None: the AWS sandbox's.
        self.generation: int | None = None
        self._recommender_disabled: set[str] = set()
        self._accounts: dict[str, _ServiceAccount] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._jobs: dict[tuple[str, str], SandboxJob] = {}
        self._faults: list[_Fault] = []
        self._assertions: list[str] = []
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> BigQuerySandbox:
        """Listen on an ephemeral port of 127.0.0.1."""
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="bigquery-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> BigQuerySandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The ``api_endpoint`` to give the client."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        """The OAuth token endpoint."""
        return f"{self.endpoint}/token"

    # --- identities ----------------------------------------------------------------------

    def create_service_account(
        self,
        email: str,
        *,
        project_id: str,
        job_projects: Iterable[str] = (),
        readable_tables: Iterable[TableRef] = (),
        recommender_projects: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Create a service account with a new RSA key, and return its JSON key file as a dict."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with self._lock:
            account = self._accounts.setdefault(email, _ServiceAccount(email, public_pem))
            account.public_key_pem = public_pem
            account.job_projects.update(job_projects)
            account.readable_tables.update(readable_tables)
            account.recommender_projects.update(recommender_projects)
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": secrets.token_hex(20),
            "private_key": private_pem,
            "client_email": email,
            "client_id": str(int.from_bytes(secrets.token_bytes(8), "big")),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri
            if self._server is not None
            else "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def trust_service_account(
        self,
        email: str,
        public_key_pem: bytes,
        *,
        job_projects: Iterable[str] = (),
        readable_tables: Iterable[TableRef] = (),
        recommender_projects: Iterable[str] = (),
    ) -> None:
        """Accept assertions signed by a key made elsewhere (another process's sandbox)."""
        with self._lock:
            account = self._accounts.setdefault(email, _ServiceAccount(email, public_key_pem))
            account.public_key_pem = public_key_pem
            account.job_projects.update(job_projects)
            account.readable_tables.update(readable_tables)
            account.recommender_projects.update(recommender_projects)

    def grant(
        self,
        email: str,
        *,
        job_projects: Iterable[str] = (),
        readable_tables: Iterable[TableRef] = (),
        recommender_projects: Iterable[str] = (),
    ) -> None:
        """Grant BigQuery Job User on projects and Data Viewer on tables."""
        with self._lock:
            account = self._accounts[email]
            account.job_projects.update(job_projects)
            account.readable_tables.update(readable_tables)
            account.recommender_projects.update(recommender_projects)

    def revoke(
        self,
        email: str,
        *,
        job_projects: Iterable[str] = (),
        readable_tables: Iterable[TableRef] = (),
        recommender_projects: Iterable[str] = (),
    ) -> None:
        """Take grants away."""
        with self._lock:
            account = self._accounts[email]
            account.job_projects.difference_update(job_projects)
            account.readable_tables.difference_update(readable_tables)
            account.recommender_projects.difference_update(recommender_projects)

    def disable_recommender_api(self, project: str) -> None:
        """Answer the project's Recommender requests as Google does before the API is enabled."""
        with self._lock:
            self._recommender_disabled.add(project)

    def enable_recommender_api(self, project: str) -> None:
        with self._lock:
            self._recommender_disabled.discard(project)

    def recommender_generation(self) -> int:
        """The pull generation recommendations are served at now."""
        if self.generation is not None:
            return self.generation
        # Imported here: the AWS sandbox's generation file is the demo's pull counter.
        from finops_pipeline.providers.aws.sandbox.hook import read_generation

        return read_generation()

    def list_recommendations(
        self, email: str, project: str, location: str, recommender: str, query: dict[str, str]
    ) -> dict[str, Any]:
        """recommendations.list after the API's enablement and the caller's grant."""
        with self._lock:
            disabled = project in self._recommender_disabled
            allowed = project in self._accounts[email].recommender_projects
        number = project_number(project)
        if disabled:
            raise RecommenderApiError(
                403,
                "PERMISSION_DENIED",
                f"Recommender API has not been used in project {number} before or it is "
                "disabled. Enable it by visiting https://console.developers.google.com/apis/"
                f"api/recommender.googleapis.com/overview?project={number} then retry.",
                reason="SERVICE_DISABLED",
                domain="googleapis.com",
                metadata={
                    "service": "recommender.googleapis.com",
                    "consumer": f"projects/{number}",
                    "serviceTitle": "Recommender API",
                },
            )
        if not allowed:
            permission = "recommender.computeInstanceMachineTypeRecommendations.list"
            raise RecommenderApiError(
                403,
                "PERMISSION_DENIED",
                f"Permission '{permission}' denied on resource '//recommender.googleapis.com/"
                f"projects/{project}/locations/{location}/recommenders/{recommender}' (or it "
                "may not exist).",
                reason="IAM_PERMISSION_DENIED",
                domain="recommender.googleapis.com",
                metadata={"permission": permission},
            )
        return self.recommender.list_recommendations(
            project,
            location,
            recommender,
            query=query,
            generation=self.recommender_generation(),
        )

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (for leak checks)."""
        with self._lock:
            return list(self._tokens)

    def received_assertions(self) -> list[str]:
        """Every signed JWT assertion presented to the token endpoint (for leak checks)."""
        with self._lock:
            return list(self._assertions)

    # --- faults and records --------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        *,
        status: int = 503,
        reason: str = "backendError",
        path_contains: str = "/bigquery/",
    ) -> None:
        """Answer the next ``count`` matching requests with an error."""
        with self._lock:
            self._faults.append(_Fault(status, reason, path_contains, count))

    def clear_faults(self) -> None:
        """Drop every pending injected fault."""
        with self._lock:
            self._faults.clear()

    def query_jobs(self, *, include_dry_runs: bool = False) -> list[SandboxJob]:
        """Every query the sandbox ran (jobs.insert and jobs.query), oldest first."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda job: job.created_ms)
        return [job for job in jobs if include_dry_runs or not job.dry_run]

    def reset_records(self) -> None:
        """Forget past jobs and requests."""
        with self._lock:
            self._jobs.clear()
            self.requests.clear()

    # --- request handling (called by the handler) ----------------------------------------

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.path_contains in path:
                    fault.remaining -= 1
                    return fault
        return None

    def _issue_token(self, form: Mapping[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type", [""])[0] != JWT_BEARER_GRANT:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "Invalid grant_type.",
            }
        assertion = form.get("assertion", [""])[0]
        with self._lock:
            self._assertions.append(assertion)
        try:
            unverified = google_jwt.decode(assertion, verify=False)
        except ValueError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        email = unverified.get("iss")
        with self._lock:
            account = self._accounts.get(email)
        if account is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Invalid grant: account not found",
            }
        try:
            # google-auth signs for Google's token endpoint whatever token_uri says.
            google_jwt.decode(
                assertion,
                certs=account.public_key_pem,
                audience=[GOOGLE_TOKEN_AUDIENCE, self.token_uri],
            )
        except ValueError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (email, time.time() + TOKEN_LIFETIME_SECONDS)
        return 200, {
            "access_token": token,
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "token_type": "Bearer",
        }

    def _caller(self, authorization: str | None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise BigQueryApiError(
                401, "required", "Request is missing required authentication credential."
            )
        token = authorization[len("Bearer ") :].strip()
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] < time.time():
            raise BigQueryApiError(
                401, "authError", "Request had invalid authentication credentials."
            )
        return entry[0]

    def _jwt_caller(self, authorization: str | None) -> str:
        """The caller of a Google API that also takes self-signed JWTs (the GAPIC clients send
        one, signed with the service-account key, instead of an OAuth access token)."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token.count(".") != 2:
            return self._caller(authorization)
        try:
            email = google_jwt.decode(token, verify=False).get("iss")
        except ValueError:
            email = None
        with self._lock:
            account = self._accounts.get(email) if isinstance(email, str) else None
        if account is None:
            raise BigQueryApiError(
                401, "authError", "Request had invalid authentication credentials."
            )
        try:
            google_jwt.decode(token, certs=account.public_key_pem)  # signature and expiry
        except ValueError:
            raise BigQueryApiError(
                401, "authError", "Request had invalid authentication credentials."
            ) from None
        with self._lock:
            self._assertions.append(token)
        return account.email

    def _check_job_user(self, email: str, project: str) -> None:
        with self._lock:
            allowed = project in self._accounts[email].job_projects
        if not allowed:
            raise BigQueryApiError(
                403,
                "accessDenied",
                f"Access Denied: Project {project}: User does not have bigquery.jobs.create "
                f"permission in project {project}.",
            )

    def _check_readable(self, email: str, refs: Iterable[TableRef]) -> None:
        with self._lock:
            readable = set(self._accounts[email].readable_tables)
        for ref in refs:
            if ref not in readable:
                raise BigQueryApiError(
                    403,
                    "accessDenied",
                    f"Access Denied: Table {ref}: User does not have permission to query table "
                    f"{ref}, or perhaps it does not exist.",
                )

    def get_table(self, email: str, ref: TableRef) -> dict[str, Any]:
        self._check_readable(email, [ref])
        return self.engine.table_resource(ref)

    def run_job(
        self,
        email: str,
        project: str,
        configuration: Mapping[str, Any],
        *,
        job_id: str | None,
        location: str | None,
    ) -> SandboxJob:
        """Run a query job; errors in the query itself are recorded on the job."""
        query_config = configuration.get("query") or {}
        dry_run = bool(configuration.get("dryRun"))
        self._check_job_user(email, project)
        if query_config.get("useLegacySql", False) not in (False, "false"):
            raise BigQueryApiError(
                400, "invalid", "The sandbox runs GoogleSQL only (useLegacySql=false)."
            )
        sql = str(query_config.get("query") or "")
        maximum = query_config.get("maximumBytesBilled")
        job = SandboxJob(
            project=project,
            job_id=job_id or f"job_{uuid.uuid4().hex}",
            location=location or "US",
            query=sql,
            user_email=email,
            result=None,
            error=None,
            dry_run=dry_run,
            maximum_bytes_billed=int(maximum) if maximum not in (None, "") else None,
            created_ms=time.time_ns() // 1_000_000,
        )
        try:
            if query_config.get("parameterMode", "NAMED") not in ("NAMED", None):
                raise BigQueryApiError(
                    400, "invalidQuery", "The sandbox supports named query parameters only"
                )
            parameters = decode_parameters(query_config.get("queryParameters") or [])
            self._check_readable(email, self.engine.referenced_tables(sql, project))
            job.result = self.engine.run_query(
                sql,
                parameters,
                default_project=project,
                location=location,
                dry_run=dry_run,
                maximum_bytes_billed=job.maximum_bytes_billed,
            )
        except BigQueryApiError as exc:
            job.error = exc
        with self._lock:
            self._jobs[(project, job.job_id)] = job
        return job

    def job(self, project: str, job_id: str) -> SandboxJob:
        with self._lock:
            job = self._jobs.get((project, job_id))
        if job is None:
            raise BigQueryApiError(404, "notFound", f"Not found: Job {project}:{job_id}")
        return job


def job_resource(job: SandboxJob) -> dict[str, Any]:
    """The REST Job resource."""
    statistics: dict[str, Any] = {
        "creationTime": str(job.created_ms),
        "startTime": str(job.created_ms),
        "endTime": str(job.created_ms + 1),
    }
    status: dict[str, Any] = {"state": "DONE"}
    if job.error is not None:
        error = {"reason": job.error.reason, "message": job.error.message}
        if job.error.status != 404:
            error["location"] = "query"
        status["errorResult"] = error
        status["errors"] = [error]
    else:
        assert job.result is not None
        statistics["totalBytesProcessed"] = str(job.result.bytes_processed)
        statistics["query"] = {
            "totalBytesProcessed": str(job.result.bytes_processed),
            "totalBytesBilled": str(job.result.bytes_billed),
            "totalBytesProcessedAccuracy": "PRECISE",
            "cacheHit": False,
            "statementType": "SELECT",
            "referencedTables": [
                {"projectId": ref.project, "datasetId": ref.dataset, "tableId": ref.table}
                for ref in job.result.tables
            ],
            "schema": {"fields": job.result.schema},
        }
    resource: dict[str, Any] = {
        "kind": "bigquery#job",
        "id": f"{job.project}:{job.location}.{job.job_id}",
        "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": job.location},
        "configuration": {
            "jobType": "QUERY",
            "dryRun": job.dry_run,
            "query": {"query": job.query, "useLegacySql": False},
        },
        "status": status,
        "statistics": statistics,
        "user_email": job.user_email,
    }
    return resource


def _encode_value(value: Any, kind: str, int64_timestamps: bool) -> str | None:
    if value is None:
        return None
    if kind == "TIMESTAMP":
        assert isinstance(value, dt.datetime)
        moment = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
        micros = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
        return str(micros) if int64_timestamps else f"{micros / 1e6:.6f}"
    if kind == "DATE":
        return value.isoformat()
    if kind == "NUMERIC":
        return format(Decimal(value), "f")
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "FLOAT":
        return repr(float(value))
    return str(value)


def rows_page(
    result: QueryResult, start: int, count: int, *, int64_timestamps: bool
) -> list[dict[str, Any]]:
    """Rows in the REST ``{"f": [{"v": ...}]}`` form."""
    kinds = [column["type"] for column in result.schema]
    return [
        {
            "f": [
                {"v": _encode_value(value, kind, int64_timestamps)}
                for value, kind in zip(row, kinds, strict=True)
            ]
        }
        for row in result.rows[start : start + count]
    ]


def google_error_body(error: RecommenderApiError) -> dict[str, Any]:
    """The JSON error envelope of Google's newer APIs, with a ``google.rpc.ErrorInfo``."""
    body: dict[str, Any] = {
        "code": error.status,
        "message": error.message,
        "status": error.code,
    }
    if error.reason:
        body["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": error.reason,
                "domain": error.domain,
                "metadata": dict(error.metadata),
            }
        ]
    return {"error": body}


def error_body(error: BigQueryApiError) -> dict[str, Any]:
    """BigQuery's JSON error envelope."""
    return {
        "error": {
            "code": error.status,
            "message": error.message,
            "errors": [{"message": error.message, "domain": "global", "reason": error.reason}],
            "status": _STATUS_NAMES.get(error.status, "UNKNOWN"),
        }
    }


class _Handler(BaseHTTPRequestHandler):
    sandbox: BigQuerySandbox
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output is not the place for access logs."""

    def _send(self, status: int, payload: Mapping[str, Any] | Sequence[Any]) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        body = self._body() if method == "POST" else b""
        sandbox = self.sandbox
        with sandbox._lock:
            sandbox.requests.append((method, url.path))
        fault = sandbox._take_fault(url.path)
        if fault is not None:
            if url.path.startswith("/v1/"):
                status = _STATUS_NAMES.get(fault.status, "UNKNOWN")
                body = google_error_body(RecommenderApiError(fault.status, status, "Injected."))
            else:
                body = error_body(BigQueryApiError(fault.status, fault.reason, "Injected fault."))
            self._send(fault.status, body)
            return
        try:
            if method == "POST" and url.path == "/token":
                status, payload = sandbox._issue_token(parse_qs(body.decode("utf-8")))
                self._send(status, payload)
                return
            parts = url.path.strip("/").split("/")
            if parts[:2] == ["v1", "projects"]:
                self._recommender(method, parts, query)
                return
            if parts[:3] != ["bigquery", "v2", "projects"] or len(parts) < 5:
                raise BigQueryApiError(404, "notFound", f"Not found: {url.path}")
            email = sandbox._caller(self.headers.get("Authorization"))
            project, rest = parts[3], parts[4:]
            self._route(method, email, project, rest, query, body)
        except BigQueryApiError as exc:
            self._send(exc.status, error_body(exc))
        except Exception as exc:  # a sandbox bug must surface as a 500, not hang the client
            self._send(
                500,
                error_body(
                    BigQueryApiError(
                        500, "internalError", f"Sandbox error: {type(exc).__name__}: {exc}"
                    )
                ),
            )

    def _recommender(self, method: str, parts: list[str], query: Mapping[str, str]) -> None:
        """``GET /v1/projects/{p}/locations/{l}/recommenders/{r}/recommendations``."""
        try:
            if (
                method != "GET"
                or len(parts) != 8
                or parts[3] != "locations"
                or parts[5] != "recommenders"
                or parts[7] != "recommendations"
            ):
                raise RecommenderApiError(404, "NOT_FOUND", "Method not found.")
            try:
                email = self.sandbox._jwt_caller(self.headers.get("Authorization"))
            except BigQueryApiError as exc:
                raise RecommenderApiError(exc.status, "UNAUTHENTICATED", exc.message) from None
            payload = self.sandbox.list_recommendations(
                email, parts[2], parts[4], parts[6], dict(query)
            )
        except RecommenderApiError as exc:
            self._send(exc.status, google_error_body(exc))
            return
        self._send(200, payload)

    def _route(
        self,
        method: str,
        email: str,
        project: str,
        rest: list[str],
        query: Mapping[str, str],
        body: bytes,
    ) -> None:
        sandbox = self.sandbox
        int64_timestamps = query.get("formatOptions.useInt64Timestamp", "").lower() == "true"
        if (
            method == "GET" and len(rest) == 5 and rest[0] == "datasets" and rest[2] == "tables"
        ) or (method == "GET" and len(rest) == 4 and rest[0] == "datasets" and rest[2] == "tables"):
            self._send(200, sandbox.get_table(email, TableRef(project, rest[1], rest[3])))
        elif method == "POST" and rest == ["jobs"]:
            request = json.loads(body or b"{}")
            reference = request.get("jobReference") or {}
            job = sandbox.run_job(
                email,
                project,
                request.get("configuration") or {},
                job_id=reference.get("jobId"),
                location=reference.get("location"),
            )
            self._send(200, job_resource(job))
        elif method == "GET" and len(rest) == 2 and rest[0] == "jobs":
            self._send(200, job_resource(sandbox.job(project, rest[1])))
        elif method == "POST" and len(rest) == 3 and rest[0] == "jobs" and rest[2] == "cancel":
            self._send(
                200,
                {
                    "kind": "bigquery#jobCancelResponse",
                    "job": job_resource(sandbox.job(project, rest[1])),
                },
            )
        elif method == "POST" and rest == ["queries"]:
            request = json.loads(body or b"{}")
            configuration = {
                "dryRun": request.get("dryRun", False),
                "query": {
                    "query": request.get("query"),
                    "useLegacySql": request.get("useLegacySql", False),
                    "parameterMode": request.get("parameterMode", "NAMED"),
                    "queryParameters": request.get("queryParameters") or [],
                    "maximumBytesBilled": request.get("maximumBytesBilled"),
                },
            }
            job = sandbox.run_job(
                email, project, configuration, job_id=None, location=request.get("location")
            )
            if job.error is not None:
                raise job.error
            int64 = bool((request.get("formatOptions") or {}).get("useInt64Timestamp"))
            page = int(request.get("maxResults") or sandbox.page_rows)
            self._send(200, self._results(job, 0, page, int64, kind="bigquery#queryResponse"))
        elif method == "GET" and len(rest) == 2 and rest[0] == "queries":
            job = sandbox.job(project, rest[1])
            if job.error is not None:
                raise job.error
            token = query.get("pageToken")
            start = int(token) if token else int(query.get("startIndex") or 0)
            page = int(query["maxResults"]) if "maxResults" in query else sandbox.page_rows
            self._send(
                200,
                self._results(
                    job, start, page, int64_timestamps, kind="bigquery#getQueryResultsResponse"
                ),
            )
        else:
            raise BigQueryApiError(404, "notFound", f"Not found: {method} {'/'.join(rest)}")

    def _results(
        self, job: SandboxJob, start: int, page: int, int64: bool, *, kind: str
    ) -> dict[str, Any]:
        assert job.result is not None
        result = job.result
        page = max(0, min(page, self.sandbox.page_rows))
        payload: dict[str, Any] = {
            "kind": kind,
            "jobReference": {
                "projectId": job.project,
                "jobId": job.job_id,
                "location": job.location,
            },
            "schema": {"fields": result.schema},
            "totalRows": str(len(result.rows)),
            "jobComplete": True,
            "cacheHit": False,
            "totalBytesProcessed": str(result.bytes_processed),
            "totalBytesBilled": str(result.bytes_billed),
        }
        if page:
            payload["rows"] = rows_page(result, start, page, int64_timestamps=int64)
            if start + page < len(result.rows):
                payload["pageToken"] = str(start + page)
        return payload
