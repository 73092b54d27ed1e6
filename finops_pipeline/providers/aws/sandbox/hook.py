"""Serving the sandbox to the real boto3 ``ce`` client through botocore's event hooks.

The provider registry's AWS hook (``finops_pipeline.providers.aws.spec``), bound where the
resources are, attaches :class:`SandboxResponder` to clients whose endpoint is the reserved
sandbox host; the production client never imports this module. botocore still builds, serialises and signs every request exactly as
for AWS; the ``before-send`` event then hands the prepared HTTP request to the responder, which
answers with an HTTP response in Cost Explorer's JSON, errors included (a 400
``LimitExceededException`` goes through botocore's own retry logic). Paging, parsing and loading
are the production code, unchanged. The ``.invalid`` host never resolves, so a sandbox account
can never reach a real endpoint by mistake.

The responder is stateless apart from counters, so it works in any process: settings come from
``FINOPS_SANDBOX_*`` environment variables, the pull generation from a small file under
``FINOPS_HOME`` (``finops demo`` advances it), and requests can be logged to a file so a
benchmark can count requests made in Dagster run workers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.credentials import Credentials as BotocoreCredentials

from finops_pipeline.config import finops_home
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.aws.sandbox.anomalies import (
    ANOMALIES_OPERATION,
    AnomalyDetectionSandbox,
)
from finops_pipeline.providers.aws.sandbox.generator import DEFAULT_SEED, Pull, SandboxGenerator
from finops_pipeline.providers.aws.sandbox.recommendations import (
    OPERATIONS as RECOMMENDATION_OPERATIONS,
)
from finops_pipeline.providers.aws.sandbox.recommendations import RecommendationsSandbox
from finops_pipeline.providers.aws.sandbox.service import (
    DEFAULT_PAGE_SIZE,
    CostExplorerSandbox,
    SandboxApiError,
)
from finops_pipeline.security.credentials import Secret

logger = logging.getLogger(__name__)

SANDBOX_HOST = "sandbox.finops.invalid"
SANDBOX_ENDPOINT_URL = f"https://{SANDBOX_HOST}"
_ACCESS_KEY_PREFIX = "SBXK"
_SECRET_DOMAIN = b"finops-sandbox-secret-v1"
_GENERATION_FILE = Path("sandbox") / "generation"
_TARGET_PREFIX = "AWSInsightsIndexService."

ENV_SEED = "FINOPS_SANDBOX_SEED"
ENV_PAGE_SIZE = "FINOPS_SANDBOX_PAGE_SIZE"
ENV_LATENCY_MS = "FINOPS_SANDBOX_LATENCY_MS"
ENV_THROTTLE_RATE = "FINOPS_SANDBOX_THROTTLE_RATE"
ENV_AS_OF = "FINOPS_SANDBOX_AS_OF"
ENV_GENERATION = "FINOPS_SANDBOX_GENERATION"
ENV_REQUEST_LOG = "FINOPS_SANDBOX_REQUEST_LOG"


def is_sandbox_endpoint(endpoint_url: str | None) -> bool:
    """Whether ``endpoint_url`` names the sandbox's reserved host."""
    if not endpoint_url:
        return False
    return (urlsplit(endpoint_url).hostname or "").lower() == SANDBOX_HOST


def _check_digits(account_number: str) -> str:
    return hashlib.sha256(f"{_ACCESS_KEY_PREFIX}{account_number}".encode()).hexdigest()[:4].upper()


def sandbox_credentials(account_number: str) -> AwsAccessKeyCredentials:
    """The sandbox's access key for one account; its secret is derived, not stored anywhere.

    The key id names the account (``SBXK`` + 12 digits + 4 check characters, 20 characters like
    a real key id), and requests are verified against the derived secret, so a credential that
    was decrypted wrongly is refused just as AWS would refuse it.
    """
    if len(account_number) != 12 or not account_number.isdigit():
        raise ValueError(f"{account_number!r} is not a 12-digit AWS account number")
    key_id = f"{_ACCESS_KEY_PREFIX}{account_number}{_check_digits(account_number)}"
    secret = hmac.new(_SECRET_DOMAIN, key_id.encode(), hashlib.sha256).hexdigest()[:40]
    return AwsAccessKeyCredentials(access_key_id=key_id, secret_access_key=Secret(secret))


def _account_for_key(key_id: str) -> str | None:
    number = key_id[len(_ACCESS_KEY_PREFIX) : len(_ACCESS_KEY_PREFIX) + 12]
    if (
        key_id.startswith(_ACCESS_KEY_PREFIX)
        and len(key_id) == 20
        and number.isdigit()
        and key_id[-4:] == _check_digits(number)
    ):
        return number
    return None


# --- settings and the pull generation ---------------------------------------------------


def generation_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file holding the sandbox's pull generation."""
    return finops_home(environ) / _GENERATION_FILE


def read_generation(environ: Mapping[str, str] | None = None) -> int:
    """The current pull generation: ``FINOPS_SANDBOX_GENERATION``, else the file, else 0."""
    env = os.environ if environ is None else environ
    configured = env.get(ENV_GENERATION, "").strip()
    if configured:
        return int(configured)
    try:
        return int(generation_path(env).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def advance_generation(environ: Mapping[str, str] | None = None) -> int:
    """Start a new pull: later reads see restated values for the settling days."""
    path = generation_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ if environ is None else environ
    # The file's own value, even when the environment pins a generation for this process.
    generation = read_generation({k: v for k, v in env.items() if k != ENV_GENERATION}) + 1
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(f"{generation}\n")
    temporary.replace(path)
    return generation


@dataclass(frozen=True)
class SandboxSettings:
    """How the sandbox behaves; ``None`` fields are read at request time."""

    seed: int = DEFAULT_SEED
    page_size: int = DEFAULT_PAGE_SIZE
    latency_seconds: float = 0.0
    throttle_rate: float = 0.0
    #: "Today" for the sandbox; None: the real UTC date at each request.
    as_of: dt.date | None = None
    #: None: :func:`read_generation` at each request.
    generation: int | None = None
    request_log: Path | None = None

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError(f"{ENV_PAGE_SIZE} must be at least 1")
        if not 0.0 <= self.throttle_rate <= 1.0:
            raise ValueError(f"{ENV_THROTTLE_RATE} must be between 0 and 1")
        if self.latency_seconds < 0:
            raise ValueError(f"{ENV_LATENCY_MS} must not be negative")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SandboxSettings:
        """Settings from ``FINOPS_SANDBOX_*`` variables, defaults for the unset ones."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        try:
            return cls(
                seed=int(get(ENV_SEED) or DEFAULT_SEED),
                page_size=int(get(ENV_PAGE_SIZE) or DEFAULT_PAGE_SIZE),
                latency_seconds=float(get(ENV_LATENCY_MS) or 0) / 1000.0,
                throttle_rate=float(get(ENV_THROTTLE_RATE) or 0),
                as_of=dt.date.fromisoformat(get(ENV_AS_OF)) if get(ENV_AS_OF) else None,
                generation=int(get(ENV_GENERATION)) if get(ENV_GENERATION) else None,
                request_log=Path(get(ENV_REQUEST_LOG)) if get(ENV_REQUEST_LOG) else None,
            )
        except ValueError as error:
            raise ValueError(f"Invalid sandbox setting: {error}") from None

    def pull(self) -> Pull:
        """The pull a request made now belongs to."""
        as_of = self.as_of or dt.datetime.now(dt.UTC).date()
        generation = self.generation if self.generation is not None else read_generation()
        return Pull(as_of=as_of, generation=generation)


# --- counters ---------------------------------------------------------------------------


@dataclass
class RequestCounts:
    """Requests the sandbox answered in this process. Only ``paid`` ones cost money on AWS."""

    paid: int = 0
    throttled: int = 0
    rejected: int = 0
    by_account: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.paid + self.throttled + self.rejected


_counts = RequestCounts()
_counts_lock = threading.Lock()
# Attempts seen, for deterministic throttling at an exact rate.
_attempts = 0


def request_counts() -> RequestCounts:
    """A copy of this process's counters."""
    with _counts_lock:
        return replace(_counts, by_account=dict(_counts.by_account))


def reset_request_counts() -> None:
    """Zero this process's counters (and the throttling sequence)."""
    global _attempts
    with _counts_lock:
        _counts.paid = _counts.throttled = _counts.rejected = 0
        _counts.by_account.clear()
        _attempts = 0


# --- the botocore side ------------------------------------------------------------------


class _Body(io.BytesIO):
    """The raw body botocore reads a response from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def _response(request: AWSPreparedRequest, status: int, payload: dict[str, Any]) -> AWSResponse:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "Content-Length": str(len(body)),
        "x-amzn-RequestId": hashlib.sha1(body).hexdigest(),
    }
    return AWSResponse(request.url, status, headers, _Body(body))


def _error(request: AWSPreparedRequest, error: SandboxApiError) -> AWSResponse:
    return _response(request, error.status, {"__type": error.code, "Message": error.message})


def _header(request: AWSPreparedRequest, name: str) -> str:
    value = request.headers.get(name)
    if isinstance(value, bytes):
        return value.decode()
    return str(value or "")


def _authenticate(request: AWSPreparedRequest) -> str:
    """The caller's account number, after checking the SigV4 signature like AWS does.

    Raises:
        SandboxApiError: ``UnrecognizedClientException`` for an unknown key,
            ``InvalidSignatureException`` for a wrong secret.
    """
    authorization = _header(request, "Authorization")
    parts = dict(
        part.strip().split("=", 1)
        for part in authorization.removeprefix("AWS4-HMAC-SHA256").split(",")
        if "=" in part
    )
    key_id = parts.get("Credential", "").split("/", 1)[0]
    account = _account_for_key(key_id)
    if account is None:
        raise SandboxApiError(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    expected = sandbox_credentials(account)
    signed = parts.get("SignedHeaders", "").split(";")
    unsigned = AWSRequest(
        method=request.method,
        url=request.url,
        headers={
            name: value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()
            if name.lower() in signed
        },
        data=request.body,
    )
    unsigned.context["timestamp"] = _header(request, "X-Amz-Date")
    signer = SigV4Auth(
        BotocoreCredentials(key_id, expected.secret_access_key.reveal()), "ce", "us-east-1"
    )
    canonical = signer.canonical_request(unsigned)
    signature = signer.signature(signer.string_to_sign(unsigned, canonical), unsigned)
    if not hmac.compare_digest(signature, parts.get("Signature", "")):
        raise SandboxApiError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return account


class SandboxResponder:
    """The ``before-send`` handler that answers Cost Explorer calls from the sandbox."""

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings.from_environment()
        generator = SandboxGenerator(self.settings.seed)
        self.service = CostExplorerSandbox(generator, page_size=self.settings.page_size)
        self.recommendations = RecommendationsSandbox(generator)
        self.anomalies = AnomalyDetectionSandbox(generator)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        global _attempts
        settings = self.settings
        if settings.latency_seconds:
            time.sleep(settings.latency_seconds)
        account = ""
        try:
            account = _authenticate(request)
            operation = _header(request, "X-Amz-Target").removeprefix(_TARGET_PREFIX)
            if operation not in {
                "GetCostAndUsage",
                ANOMALIES_OPERATION,
                *RECOMMENDATION_OPERATIONS,
            }:
                raise SandboxApiError(
                    "UnsupportedOperation", f"The sandbox does not implement {operation}"
                )
            with _counts_lock:
                attempt = _attempts
                _attempts += 1
            rate = settings.throttle_rate
            # Exactly `rate` of attempts fail, spread evenly from the first, so runs are reproducible.
            if rate and math.ceil((attempt + 1) * rate) > math.ceil(attempt * rate):
                raise SandboxApiError("LimitExceededException", "Rate exceeded")
            body = json.loads(request.body or b"{}")
            if operation in RECOMMENDATION_OPERATIONS:
                page = self.recommendations.answer(
                    operation, body, caller=account, pull=settings.pull()
                )
            elif operation == ANOMALIES_OPERATION:
                page = self.anomalies.get_anomalies(body, caller=account, pull=settings.pull())
            else:
                page = self.service.get_cost_and_usage(body, caller=account, pull=settings.pull())
        except SandboxApiError as error:
            outcome = "throttled" if error.code == "LimitExceededException" else "rejected"
            self._count(outcome, account)
            return _error(request, error)
        self._count("paid", account)
        return _response(request, 200, page)

    def _count(self, outcome: str, account: str) -> None:
        with _counts_lock:
            setattr(_counts, outcome, getattr(_counts, outcome) + 1)
            if outcome == "paid":
                _counts.by_account[account] = _counts.by_account.get(account, 0) + 1
        if self.settings.request_log is not None:
            line = json.dumps({"outcome": outcome, "account": account, "pid": os.getpid()})
            # One short O_APPEND write per line keeps lines whole across processes.
            descriptor = os.open(
                self.settings.request_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
            try:
                os.write(descriptor, (line + "\n").encode())
            finally:
                os.close(descriptor)


def attach_sandbox(client: Any, settings: SandboxSettings | None = None) -> SandboxResponder:
    """Answer this ``ce`` client's requests from the sandbox instead of the network."""
    responder = SandboxResponder(settings)
    # Registered on the client's own event system, so no other client is affected.
    client.meta.events.register("before-send.cost-explorer", responder)
    return responder
