"""Typed GCP errors. Each message is one line, says what to do, and quotes no key material."""

from __future__ import annotations

from finops_pipeline.errors import (
    ConfigurationError,
    CredentialError,
    ProviderAccessDeniedError,
    ProviderDataError,
    ProviderError,
    ProviderThrottledError,
)


class BillingTableNameError(ConfigurationError):
    """The billing export table is not a plain ``project.dataset.table`` name."""


class BillingExportSettingError(ConfigurationError):
    """A billing export setting (location, project id, bytes cap) is malformed."""


class PartitioningError(ConfigurationError):
    """The export table's partitioning leaves no safe way to bound the scan."""


class ServiceAccountKeyError(CredentialError):
    """The service-account JSON key is malformed, or Google refused it."""


class GcpAccessDeniedError(ProviderAccessDeniedError):
    """The service account lacks a BigQuery permission on the export or the job project."""


class BillingTableNotFoundError(ProviderError):
    """The export table (or its dataset, or the location) does not exist as configured."""


class BytesBilledLimitError(ProviderError):
    """The query would bill more bytes than ``maximum_bytes_billed`` allows; nothing was billed."""


class BillingQueryError(ProviderError):
    """BigQuery rejected the billing query itself (the export's schema is not the expected one)."""


class GcpTransientError(ProviderError):
    """BigQuery or Google's token endpoint could not be reached, or failed on its side."""

    permanent = False


class GcpThrottledError(ProviderThrottledError):
    """BigQuery kept answering rate-limit or quota errors."""


class BillingDataError(ProviderDataError):
    """The billing query returned rows without the expected shape."""


class RecommenderSettingError(ConfigurationError):
    """``FINOPS_GCP_RECOMMENDER_LOCATIONS`` names something that is not a zone or region."""


class RecommenderApiDisabledError(ProviderAccessDeniedError):
    """The Recommender API is not enabled in the project the requests are made for."""


class RecommenderAccessDeniedError(GcpAccessDeniedError):
    """The service account may not list a recommender's recommendations in the project."""


class RecommenderLocationError(ProviderError):
    """A recommender does not exist at a location asked (a zone that is not one, say)."""


class RecommenderDataError(ProviderDataError):
    """A recommendation without the fields every cost recommendation has."""
