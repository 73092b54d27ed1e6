"""Following GetCostAndUsage's NextPageToken to the end.

boto3 has no paginator for GetCostAndUsage. Every page must repeat the identical request, and
every page is billed, so this module owns the loop, the restart rules and the request count.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from finops_pipeline.errors import (
    BillExpiredError,
    CredentialError,
    PaginationRestartError,
    ProviderAccessDeniedError,
    ProviderDataError,
    ProviderError,
    ProviderThrottledError,
)
from finops_pipeline.providers.aws.constants import CE_MAX_PAGINATION_RESTARTS

logger = logging.getLogger(__name__)

CostExplorerCall = Callable[..., dict[str, Any]]

# A token from one pagination sequence is invalid in another; start the sequence over.
_RESTARTABLE_CODES = frozenset({"InvalidNextTokenException", "RequestChangedException"})
_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        # A wrong secret key: permanent, like an unknown key.
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)
_MAX_PAGES = 10_000
#: "The session credentials expired", across AWS protocols. Pages fetched with the old session
#: are discarded and the sequence restarts with fresh credentials, never mixing the two.
EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


class PageConsumer(Protocol):
    """Takes each page as it arrives (e.g. a parser), so the pager keeps none."""

    def add(self, page: dict[str, Any]) -> None:
        """Take one page, in order."""
        ...

    def reset(self) -> None:
        """Forget every page taken: the sequence starts over from its first page."""
        ...


@dataclass
class PagedCostResponse:
    """All pages of one GetCostAndUsage sequence (none when a consumer took them), and what
    they cost."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    paid_requests: int = 0
    restarts: int = 0
    data_unavailable: bool = False


def fetch_all_pages(
    call: CostExplorerCall,
    request: dict[str, Any],
    *,
    max_restarts: int = CE_MAX_PAGINATION_RESTARTS,
    on_expired_credentials: Callable[[], bool] | None = None,
    consumer: PageConsumer | None = None,
) -> PagedCostResponse:
    """Call ``call(**request)`` and follow ``NextPageToken`` until the last page.

    If a token is rejected part-way, the pages gathered so far are discarded and the sequence
    starts again from the first page, so pages from two attempts are never mixed. Requests that
    returned data are counted as paid (failed requests are free).

    Args:
        call: ``ce_client.get_cost_and_usage`` or anything with its contract.
        request: The request without ``NextPageToken``; it is sent unchanged on every page.
        max_restarts: How many times to start over after a pagination error.
        on_expired_credentials: Called when AWS says the session expired; returns True if it
            renewed the credentials (an assumed role), so the sequence can restart. Without
            it, or when it returns False, expiry is a permanent :class:`CredentialError`.
        consumer: Takes each page as it arrives instead of the result keeping it (and is
            reset whenever the sequence starts over), so a long window's raw pages are never
            held together. Its errors (a malformed page) stop the sequence at that page.

    Returns:
        The pages in order (none with a consumer), with counts of paid requests and restarts.

    Raises:
        ProviderAccessDeniedError: the credentials lack ``ce:GetCostAndUsage``.
        BillExpiredError: the window is older than Cost Explorer keeps.
        ProviderThrottledError: still throttled after botocore's retries.
        PaginationRestartError: pagination kept failing after ``max_restarts`` restarts.
        ProviderDataError: the pagination token looped.
        CredentialError: the credentials expired and cannot be renewed.
    """
    result = PagedCostResponse()
    for attempt in range(max_restarts + 1):
        pages: list[dict[str, Any]] = []
        page_count = 0
        if consumer is not None:
            consumer.reset()
        seen_tokens: set[str] = set()
        token: str | None = None
        try:
            while True:
                # Deep copy so a caller's mutation can never alter later pages' parameters.
                page_request = copy.deepcopy(request)
                if token is not None:
                    page_request["NextPageToken"] = token
                page = call(**page_request)
                result.paid_requests += 1
                page_count += 1
                token = page.get("NextPageToken") or None
                if consumer is None:
                    pages.append(page)
                else:
                    consumer.add(page)
                del page  # with a consumer, nothing holds the raw page past this point
                if token is None:
                    break
                if token in seen_tokens or page_count >= _MAX_PAGES:
                    raise ProviderDataError(
                        "Cost Explorer returned a pagination token it had already returned; "
                        "stopping to avoid an endless (and billed) loop. Retry the run later."
                    )
                seen_tokens.add(token)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _RESTARTABLE_CODES:
                result.restarts += 1
                logger.warning(
                    "Cost Explorer rejected page %d (%s); restarting from the first page "
                    "(attempt %d of %d)",
                    page_count + 1,
                    code,
                    attempt + 1,
                    max_restarts + 1,
                )
                continue
            if (
                code in EXPIRED_TOKEN_CODES
                and on_expired_credentials is not None
                and on_expired_credentials()
            ):
                result.restarts += 1
                logger.warning(
                    "The AWS session expired at page %d (%s); renewed it, restarting from the "
                    "first page (attempt %d of %d)",
                    page_count + 1,
                    code,
                    attempt + 1,
                    max_restarts + 1,
                )
                continue
            if code == "DataUnavailableException":
                result.data_unavailable = True
                result.pages = []
                if consumer is not None:
                    consumer.reset()
                return result
            raise translate_client_error(error) from None
        except BotoCoreError as error:
            unreachable = ProviderError(
                f"Could not complete the Cost Explorer call ({type(error).__name__}); "
                "no partial data was kept. Check network access to Cost Explorer and retry."
            )
            unreachable.permanent = False
            raise unreachable from None
        result.pages = pages
        return result
    raise PaginationRestartError(
        f"Cost Explorer pagination failed {max_restarts + 1} times in a row; "
        "no partial data was kept. Retry the run later."
    )


def translate_client_error(error: ClientError) -> ProviderError | CredentialError:
    """Map a botocore ClientError from Cost Explorer to a typed, secret-free error."""
    code = error.response.get("Error", {}).get("Code", "Unknown")
    operation = getattr(error, "operation_name", "GetCostAndUsage")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # A bare 403 (a proxy, a private endpoint, or an IAM-enforcing test double that answers
    # without an error code) is a refusal too, and retrying it only repeats the refusal.
    if (
        code in _ACCESS_DENIED_CODES
        or code.startswith("InvalidClientTokenId")
        or code in {"AccessDenied", "403"}
        or status == 403
    ):
        return ProviderAccessDeniedError(
            f"AWS denied {operation} ({code}). Grant ce:GetCostAndUsage to the account's "
            "credentials or role, then run `finops accounts validate`."
        )
    if code in EXPIRED_TOKEN_CODES:
        return CredentialError(
            f"AWS says the account's session token has expired ({code}). Stored session "
            "tokens cannot be renewed: register a long-lived access key or an IAM role."
        )
    if code == "BillExpirationException":
        return BillExpiredError(
            "Cost Explorer no longer keeps daily data for this window (BillExpirationException). "
            "Daily data covers the current month and the previous 13; choose a later start."
        )
    if code in {"LimitExceededException", "ThrottlingException", "TooManyRequestsException"}:
        return ProviderThrottledError(
            f"Cost Explorer kept throttling {operation} after retries ({code}). "
            "Lower the cost_explorer pool limit or retry later."
        )
    if code in {"ValidationException", "InvalidParameterValueException"}:
        return ProviderDataError(
            f"Cost Explorer rejected the request as invalid ({code}). This is a bug; "
            "please report it with the run id."
        )
    transient = ProviderError(f"Cost Explorer call {operation} failed with {code}.")
    transient.permanent = False
    return transient
