"""AWS SDK (botocore) errors as typed ones.

``finops_pipeline.errors`` knows no cloud SDK: each provider's spec names its translator
(``ProviderSpec.translate_error``), and :func:`finops_pipeline.providers.typed_error` asks them
in turn before the database and network translation.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from finops_pipeline.errors import FinopsError, ProviderError
from finops_pipeline.providers.aws.paging import translate_client_error

_ENDPOINT_HINT = (
    "Check the endpoint URL (the account's --endpoint-url, FINOPS_CE_ENDPOINT_URL, "
    "FINOPS_STS_ENDPOINT_URL) and network access, then retry."
)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else ""


def typed_aws_error(error: BaseException) -> FinopsError | None:
    """The typed error for a botocore error; None for anything else.

    Cost Explorer's ``GetCostAndUsage`` errors get the collector's own translation; any other
    refused call is reported with its operation and code, as transient.
    """
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
            return translate_client_error(error)
        details = error.response.get("Error", {})
        refused = ProviderError(
            f"AWS answered {getattr(error, 'operation_name', 'the call')} with "
            f"{details.get('Code', 'an error')}: {details.get('Message', '')}".rstrip(": ")
        )
        refused.permanent = False
        return refused
    return None
