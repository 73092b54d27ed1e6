"""A sandbox Cost Explorer: a deterministic synthetic organisation behind the real boto3 client.

Accounts whose ``endpoint_url`` is :data:`SANDBOX_ENDPOINT_URL` are answered by
:class:`~finops_pipeline.providers.aws.sandbox.hook.SandboxResponder` through botocore's ``before-send``
event, so everything from request serialisation to loading is the production code path.
"""

from finops_pipeline.providers.aws.sandbox.generator import DEFAULT_SEED, Pull, SandboxGenerator
from finops_pipeline.providers.aws.sandbox.hook import (
    SANDBOX_ENDPOINT_URL,
    SandboxSettings,
    advance_generation,
    attach_sandbox,
    is_sandbox_endpoint,
    read_generation,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.providers.aws.sandbox.service import CostExplorerSandbox

__all__ = [
    "DEFAULT_SEED",
    "SANDBOX_ENDPOINT_URL",
    "CostExplorerSandbox",
    "Pull",
    "SandboxGenerator",
    "SandboxSettings",
    "advance_generation",
    "attach_sandbox",
    "is_sandbox_endpoint",
    "read_generation",
    "request_counts",
    "reset_request_counts",
    "sandbox_credentials",
]
