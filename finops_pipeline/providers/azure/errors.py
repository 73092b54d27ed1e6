"""Typed Azure errors: one line each, saying what to do, never carrying a secret or token.

Every message is built here from status codes, ARM error codes and identifiers we already
hold (tenant, client and subscription ids). Service messages are not copied in, and callers
raise these ``from None``: an azure-core exception holds the request, whose ``Authorization``
header carries the bearer token.
"""

from __future__ import annotations

from finops_pipeline.errors import (
    ConfigurationError,
    ProviderAccessDeniedError,
    ProviderDataError,
    ProviderError,
    ProviderThrottledError,
)

#: The built-in role that can run Cost Management queries on a scope, and nothing else.
COST_MANAGEMENT_READER_ROLE = "Cost Management Reader"
#: The built-in role Advisor's recommendations need on the subscription (Advisor reads with
#: Reader, or Contributor/Owner; Cost Management Reader does not include it).
ADVISOR_READER_ROLE = "Reader"


class AzureConfigurationError(ConfigurationError):
    """An Azure endpoint or identifier is malformed (http instead of https, not a GUID, ...)."""


class AzureAuthenticationError(ProviderAccessDeniedError):
    """Entra ID refused the client secret, or ARM refused the token (HTTP 401). Permanent."""


class AzureAccessDeniedError(ProviderAccessDeniedError):
    """ARM answered 403: the app lacks the Cost Management Reader role on the scope. Permanent."""


class AzureScopeNotFoundError(ProviderError):
    """ARM answered 404: the subscription (or other scope) does not exist here. Permanent."""


class AzureThrottledError(ProviderThrottledError):
    """Cost Management kept answering 429 beyond the wait bound. Transient."""


class AzureNetworkError(ProviderError):
    """The endpoint could not be reached or the connection broke. Transient."""

    permanent = False


class AzureServiceError(ProviderError):
    """Cost Management answered 5xx after retries. Transient."""

    permanent = False


class AzureQueryRejectedError(ProviderDataError):
    """Cost Management refused the query body (HTTP 400): a bug on our side. Permanent."""


class AzurePaginationLoopError(ProviderDataError):
    """``nextLink`` repeated a link already followed; stopped before an endless loop."""


class AzureUnsafeLinkError(ProviderDataError):
    """``nextLink`` pointed away from the Resource Manager endpoint; the token stays home."""
