"""AWS Cost Explorer's rightsizing and Savings Plans recommendations, as normalised records.

Both APIs are billed like GetCostAndUsage: $0.01 per request, and every page is a request. A
weekly refresh of one account with the defaults makes one GetRightsizingRecommendation request
per page (up to :data:`RIGHTSIZING_PAGE_SIZE` instances a page) and one
GetSavingsPlansPurchaseRecommendation request per page per :class:`SavingsPlansQuery`, so two
paid requests for most accounts. Failed requests are not billed and not counted.

GetSavingsPlansPurchaseRecommendation returns the recommendation *with its details*: one
detail per purchase (for ``LINKED`` scope, per member account; for EC2 Instance Savings
Plans, per region and instance family). Each detail becomes one record.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from finops_pipeline.constants import PROVIDER_AWS
from finops_pipeline.errors import (
    PaginationRestartError,
    ProviderAccessDeniedError,
    ProviderDataError,
    ProviderError,
    ProviderThrottledError,
)
from finops_pipeline.insights.recommendations import (
    KIND_COMMITMENT,
    KIND_RIGHTSIZE,
    KIND_TERMINATE,
    Recommendation,
)
from finops_pipeline.providers.aws.constants import (
    CE_MAX_PAGINATION_RESTARTS,
    CE_PRICE_PER_REQUEST_USD,
)
from finops_pipeline.providers.recommenders import (
    FetchedRecommendations as ProviderFetchedRecommendations,
)

logger = logging.getLogger(__name__)

RIGHTSIZING_SOURCE = "rightsizing"
SAVINGS_PLANS_SOURCE = "savings_plans"
RIGHTSIZING_OPERATION = "GetRightsizingRecommendation"
SAVINGS_PLANS_OPERATION = "GetSavingsPlansPurchaseRecommendation"
#: Large pages keep the paid requests down. The model allows 6,000, but users report AWS
#: refusing page sizes above 1,000 for rightsizing.
RIGHTSIZING_PAGE_SIZE = 1000
SAVINGS_PLANS_PAGE_SIZE = 1000
_MAX_PAGES = 1000

_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
    }
)
_THROTTLED_CODES = frozenset(
    {"LimitExceededException", "ThrottlingException", "TooManyRequestsException"}
)
_PLAN_NAMES = {
    "COMPUTE_SP": "Compute Savings Plan",
    "EC2_INSTANCE_SP": "EC2 Instance Savings Plan",
    "SAGEMAKER_SP": "SageMaker Savings Plan",
    "DATABASE_SP": "Database Savings Plan",
}
_TERMS = {"ONE_YEAR": "1 year", "THREE_YEARS": "3 years"}

Call = Callable[..., dict[str, Any]]


class RightsizingNotEnabledError(ProviderAccessDeniedError):
    """The organisation has not opted in to EC2 rightsizing recommendations."""


@dataclass(frozen=True)
class SavingsPlansQuery:
    """One Savings Plans purchase to ask about; each costs a paid request (per page)."""

    savings_plans_type: str = "COMPUTE_SP"
    term_in_years: str = "ONE_YEAR"
    payment_option: str = "NO_UPFRONT"
    lookback_period_in_days: str = "THIRTY_DAYS"
    account_scope: str = "PAYER"

    def request(self) -> dict[str, Any]:
        return {
            "SavingsPlansType": self.savings_plans_type,
            "TermInYears": self.term_in_years,
            "PaymentOption": self.payment_option,
            "LookbackPeriodInDays": self.lookback_period_in_days,
            "AccountScope": self.account_scope,
            "PageSize": SAVINGS_PLANS_PAGE_SIZE,
        }


DEFAULT_SAVINGS_PLANS_QUERIES: tuple[SavingsPlansQuery, ...] = (SavingsPlansQuery(),)


def rightsizing_request(*, cross_family: bool = False) -> dict[str, Any]:
    """The GetRightsizingRecommendation request for EC2 (the only service it supports)."""
    return {
        "Service": "AmazonEC2",
        "Configuration": {
            "RecommendationTarget": "CROSS_INSTANCE_FAMILY"
            if cross_family
            else "SAME_INSTANCE_FAMILY",
            "BenefitsConsidered": True,
        },
        "PageSize": RIGHTSIZING_PAGE_SIZE,
    }


@dataclass
class PagedResponse:
    """Every page of one request sequence, and how many paid requests it took."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    paid_requests: int = 0
    restarts: int = 0


@dataclass
class FetchedRecommendations(ProviderFetchedRecommendations):
    """One account's recommendations from every source, and what fetching them cost."""

    @property
    def request_cost_usd(self) -> Decimal:
        return Decimal(CE_PRICE_PER_REQUEST_USD) * self.paid_requests


def fetch_pages(
    call: Call,
    request: Mapping[str, Any],
    *,
    operation: str,
    max_restarts: int = CE_MAX_PAGINATION_RESTARTS,
) -> PagedResponse:
    """Call ``call(**request)`` and follow ``NextPageToken`` to the last page.

    Each page repeats the identical request plus the token. A rejected token restarts the
    sequence from the first page (pages from two sequences are never mixed); the pages already
    fetched were billed and stay counted.

    Raises:
        ProviderAccessDeniedError, ProviderThrottledError, ProviderDataError,
        PaginationRestartError, ProviderError: see :func:`translate_error`.
    """
    result = PagedResponse()
    for attempt in range(max_restarts + 1):
        pages: list[dict[str, Any]] = []
        tokens: set[str] = set()
        token: str | None = None
        try:
            while True:
                page_request = copy.deepcopy(dict(request))
                if token is not None:
                    page_request["NextPageToken"] = token
                page = call(**page_request)
                result.paid_requests += 1
                pages.append(page)
                token = page.get("NextPageToken") or None
                if token is None:
                    break
                if token in tokens or len(pages) >= _MAX_PAGES:
                    raise ProviderDataError(
                        f"Cost Explorer's {operation} returned a page token it had already "
                        "returned; stopped to avoid an endless, billed loop. Retry later."
                    )
                tokens.add(token)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "InvalidNextTokenException":
                result.restarts += 1
                logger.warning(
                    "%s rejected page %d's token; restarting from the first page "
                    "(attempt %d of %d)",
                    operation,
                    len(pages) + 1,
                    attempt + 1,
                    max_restarts + 1,
                )
                continue
            raise translate_error(error, operation) from None
        except BotoCoreError as error:
            unreachable = ProviderError(
                f"Could not complete Cost Explorer's {operation} ({type(error).__name__}). "
                "Check network access to Cost Explorer and retry."
            )
            unreachable.permanent = False
            raise unreachable from None
        result.pages = pages
        return result
    raise PaginationRestartError(
        f"Cost Explorer's {operation} paging failed {max_restarts + 1} times in a row; "
        "retry the refresh later."
    )


def translate_error(error: ClientError, operation: str) -> ProviderError:
    """A botocore error from a recommendation API as a typed, secret-free error."""
    code = error.response.get("Error", {}).get("Code", "Unknown")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # Until the payer enables rightsizing in Cost Explorer's preferences, AWS answers
    # AccessDeniedException "Rightsizing EC2 recommendation is an opt-in only feature...".
    if code == "AccessDeniedException" and "opt-in" in str(
        error.response.get("Error", {}).get("Message", "")
    ):
        return RightsizingNotEnabledError(
            "EC2 rightsizing recommendations are not enabled for this account's organisation; "
            "enable them in the payer account's Cost Explorer preferences."
        )
    if code in _ACCESS_DENIED_CODES or status == 403:
        return ProviderAccessDeniedError(
            f"AWS denied {operation} ({code}). Grant ce:{operation} to the account's "
            "credentials or role."
        )
    if code in _THROTTLED_CODES:
        return ProviderThrottledError(
            f"Cost Explorer kept throttling {operation} after retries ({code}); retry later."
        )
    if code in {"ValidationException", "InvalidParameterValueException"}:
        return ProviderDataError(
            f"Cost Explorer rejected the {operation} request as invalid ({code}). "
            "This is a bug; please report it with the run id."
        )
    transient = ProviderError(f"Cost Explorer's {operation} failed with {code}.")
    transient.permanent = False
    return transient


def fetch_aws_recommendations(
    client: Any,
    *,
    account: str,
    savings_plans: Sequence[SavingsPlansQuery] = DEFAULT_SAVINGS_PLANS_QUERIES,
    rightsizing: bool = True,
) -> FetchedRecommendations:
    """Fetch and parse one account's rightsizing and Savings Plans recommendations.

    Args:
        client: A boto3 ``ce`` client for the account.
        account: The account's number; the records' scope.
        savings_plans: Which Savings Plans purchases to ask about.
        rightsizing: Whether to ask for EC2 rightsizing.

    Rightsizing that the payer has not enabled is a note, not an error, so Savings Plans
    recommendations still arrive. Any other error is raised, and nothing is returned for the
    account (a partial set would resolve recommendations that still stand).
    """
    fetched = FetchedRecommendations()
    if rightsizing:
        try:
            paged = fetch_pages(
                client.get_rightsizing_recommendation,
                rightsizing_request(),
                operation=RIGHTSIZING_OPERATION,
            )
        except RightsizingNotEnabledError as not_enabled:
            fetched.notes.append(str(not_enabled))
        else:
            fetched.paid_requests += paged.paid_requests
            fetched.records.extend(parse_rightsizing_pages(paged.pages, account=account))
    for query in savings_plans:
        paged = fetch_pages(
            client.get_savings_plans_purchase_recommendation,
            query.request(),
            operation=SAVINGS_PLANS_OPERATION,
        )
        fetched.paid_requests += paged.paid_requests
        fetched.records.extend(parse_savings_plans_pages(paged.pages, account=account))
    return fetched


# --- parsing -----------------------------------------------------------------------------


def _amount(value: Any, what: str, resource: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = Decimal("NaN")
    if value is None or not amount.is_finite():
        raise ProviderDataError(
            f"Cost Explorer sent no valid {what} for {resource} ({value!r}); "
            "nothing was stored for this account."
        )
    return amount


def _currency(*candidates: Any, resource: str) -> str:
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip().upper()
    raise ProviderDataError(
        f"Cost Explorer sent no currency for {resource}; nothing was stored for this account."
    )


def _ec2(details: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return ((details or {}).get("EC2ResourceDetails")) or {}


def parse_rightsizing_pages(
    pages: Sequence[Mapping[str, Any]], *, account: str
) -> list[Recommendation]:
    """Every page's ``RightsizingRecommendations`` as records, one per instance."""
    records = []
    for page in pages:
        summary_currency = (page.get("Summary") or {}).get("SavingsCurrencyCode")
        for item in page.get("RightsizingRecommendations") or []:
            records.append(parse_rightsizing(item, account=account, currency=summary_currency))
    return records


def parse_rightsizing(
    item: Mapping[str, Any], *, account: str, currency: str | None = None
) -> Recommendation:
    """One ``RightsizingRecommendation`` (MODIFY or TERMINATE) as a record.

    For MODIFY, the target is the one AWS marks ``DefaultTargetInstance``, else the one with
    the largest savings.
    """
    current = item.get("CurrentInstance") or {}
    resource = current.get("ResourceId")
    if not resource:
        raise ProviderDataError(
            "Cost Explorer sent a rightsizing recommendation without a resource id; "
            "nothing was stored for this account."
        )
    details = _ec2(current.get("ResourceDetails"))
    instance_type = details.get("InstanceType") or "unknown type"
    where = f", {details['Region']}" if details.get("Region") else ""
    name = f" ({current['InstanceName']})" if current.get("InstanceName") else ""
    described = f"{instance_type}{where}{name}"
    kind = item.get("RightsizingType")
    if kind == "TERMINATE":
        terminate = item.get("TerminateRecommendationDetail") or {}
        return Recommendation(
            provider=PROVIDER_AWS,
            account=account,
            source=RIGHTSIZING_SOURCE,
            kind=KIND_TERMINATE,
            resource_id=resource,
            current=described,
            recommended="terminate",
            estimated_monthly_savings=_amount(
                terminate.get("EstimatedMonthlySavings"), "monthly savings", resource
            ),
            currency=_currency(
                terminate.get("CurrencyCode"),
                current.get("CurrencyCode"),
                currency,
                resource=resource,
            ),
            raw=dict(item),
        )
    if kind != "MODIFY":
        raise ProviderDataError(
            f"Cost Explorer sent rightsizing type {kind!r} for {resource}; "
            "expected MODIFY or TERMINATE."
        )
    targets = (item.get("ModifyRecommendationDetail") or {}).get("TargetInstances") or []
    if not targets:
        raise ProviderDataError(
            f"Cost Explorer sent a MODIFY recommendation for {resource} without a target."
        )
    defaults = [target for target in targets if target.get("DefaultTargetInstance")]
    target = (
        defaults[0]
        if defaults
        else max(
            targets,
            key=lambda t: _amount(t.get("EstimatedMonthlySavings"), "monthly savings", resource),
        )
    )
    return Recommendation(
        provider=PROVIDER_AWS,
        account=account,
        source=RIGHTSIZING_SOURCE,
        kind=KIND_RIGHTSIZE,
        resource_id=resource,
        current=described,
        recommended=_ec2(target.get("ResourceDetails")).get("InstanceType") or "smaller type",
        estimated_monthly_savings=_amount(
            target.get("EstimatedMonthlySavings"), "monthly savings", resource
        ),
        currency=_currency(
            target.get("CurrencyCode"), current.get("CurrencyCode"), currency, resource=resource
        ),
        raw=dict(item),
    )


def parse_savings_plans_pages(
    pages: Sequence[Mapping[str, Any]], *, account: str
) -> list[Recommendation]:
    """Every page's Savings Plans purchase details as records, one per detail."""
    records = []
    for page in pages:
        recommendation = page.get("SavingsPlansPurchaseRecommendation") or {}
        for detail in recommendation.get("SavingsPlansPurchaseRecommendationDetails") or []:
            records.append(parse_savings_plans_detail(recommendation, detail, account=account))
    return records


def savings_plans_resource_id(recommendation: Mapping[str, Any], detail: Mapping[str, Any]) -> str:
    """The purchase's identity: plan type, term, payment, scope, and what the detail narrows."""
    parts = [
        str(recommendation.get("SavingsPlansType") or "UNKNOWN"),
        str(recommendation.get("TermInYears") or "UNKNOWN"),
        str(recommendation.get("PaymentOption") or "UNKNOWN"),
        str(recommendation.get("AccountScope") or "PAYER"),
    ]
    plan = detail.get("SavingsPlansDetails") or {}
    parts.extend(str(plan[key]) for key in ("Region", "InstanceFamily") if plan.get(key))
    if detail.get("AccountId"):
        parts.append(str(detail["AccountId"]))
    return "/".join(parts)


def parse_savings_plans_detail(
    recommendation: Mapping[str, Any], detail: Mapping[str, Any], *, account: str
) -> Recommendation:
    """One ``SavingsPlansPurchaseRecommendationDetail`` as a record."""
    resource = savings_plans_resource_id(recommendation, detail)
    currency = _currency(detail.get("CurrencyCode"), resource=resource)
    plan_type = str(recommendation.get("SavingsPlansType") or "")
    plan = detail.get("SavingsPlansDetails") or {}
    narrowed = ", ".join(str(plan[key]) for key in ("InstanceFamily", "Region") if plan.get(key))
    commitment = _amount(detail.get("HourlyCommitmentToPurchase"), "hourly commitment", resource)
    on_demand = detail.get("CurrentAverageHourlyOnDemandSpend")
    current = (
        f"on-demand, {_amount(on_demand, 'on-demand spend', resource)} {currency}/hour on average"
        if on_demand is not None
        else "on-demand"
    )
    recommended = (
        f"{_PLAN_NAMES.get(plan_type, plan_type)}"
        f"{f' ({narrowed})' if narrowed else ''}, "
        f"{_TERMS.get(str(recommendation.get('TermInYears')), recommendation.get('TermInYears'))}, "
        f"{str(recommendation.get('PaymentOption') or '').replace('_', ' ').lower()}: "
        f"commit {commitment} {currency}/hour"
    )
    parent = {
        key: value
        for key, value in recommendation.items()
        if key not in {"SavingsPlansPurchaseRecommendationDetails"}
    }
    return Recommendation(
        provider=PROVIDER_AWS,
        account=account,
        source=SAVINGS_PLANS_SOURCE,
        kind=KIND_COMMITMENT,
        resource_id=resource,
        current=current,
        recommended=recommended,
        estimated_monthly_savings=_amount(
            detail.get("EstimatedMonthlySavingsAmount"), "monthly savings", resource
        ),
        currency=currency,
        raw={"recommendation": parent, "detail": dict(detail)},
    )
