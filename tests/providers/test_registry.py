"""The provider registry: one spec per cloud; the sandbox is bound there, not in the client."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finops_pipeline.errors import UnsupportedProviderError
from finops_pipeline.providers import provider_names, provider_spec


def test_aws_is_registered_with_its_credential_kinds_and_sandbox_hook() -> None:
    assert "aws" in provider_names()
    spec = provider_spec("aws")
    assert spec.name == "aws"
    assert set(spec.credential_kinds) == {"aws_access_key", "aws_role"}
    assert spec.client_hook is not None


def test_an_unregistered_provider_is_a_typed_error_naming_the_registered_ones() -> None:
    with pytest.raises(UnsupportedProviderError, match="'aws'"):
        provider_spec("oracle")


# Built with a sandbox endpoint but no hook, the client must stay an ordinary AWS client.
_BUILD_WITHOUT_HOOK = """
import sys
from finops_pipeline.providers.aws.client import build_cost_explorer_client
from finops_pipeline.security.credentials import Secret
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
keys = AwsAccessKeyCredentials("AKIAEXAMPLEEXAMPLE00", Secret("x" * 40))
build_cost_explorer_client(keys, endpoint_url=sys.argv[1])
print(sorted(m for m in sys.modules if ".sandbox" in m))
"""


def test_the_production_cost_explorer_client_does_not_import_the_sandbox() -> None:
    from finops_pipeline.providers.aws.sandbox.hook import SANDBOX_ENDPOINT_URL

    result = subprocess.run(
        [sys.executable, "-c", _BUILD_WITHOUT_HOOK, SANDBOX_ENDPOINT_URL],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "[]"


def test_every_stored_credential_kind_resolves_to_its_providers_class() -> None:
    from finops_pipeline.providers import credential_class, credential_kinds
    from finops_pipeline.providers.aws.credentials import AwsRoleCredentials

    assert set(credential_kinds()) >= {"aws_access_key", "aws_role"}
    assert credential_class("aws_role") is AwsRoleCredentials
    assert credential_class("no_such_kind") is None


def test_cost_data_requires_one_collector_resource_per_registered_provider() -> None:
    from finops_pipeline.assets.cost_data import cost_data
    from finops_pipeline.providers import provider_specs

    keys = cost_data.required_resource_keys
    assert {spec.resource_key for spec in provider_specs()} <= keys
    assert {"postgres", "credential_decryptor"} <= keys


def test_sdk_errors_are_translated_by_their_providers_entry() -> None:
    import psycopg
    from botocore.exceptions import ClientError, EndpointConnectionError

    from finops_pipeline.errors import (
        DatabaseError,
        ProviderAccessDeniedError,
        ProviderError,
        typed_database_or_network_error,
    )
    from finops_pipeline.providers import typed_error

    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetCostAndUsage"
    )
    assert isinstance(typed_error(denied), ProviderAccessDeniedError)
    unreachable = typed_error(EndpointConnectionError(endpoint_url="https://ce.example.invalid"))
    assert isinstance(unreachable, ProviderError) and not unreachable.permanent
    assert "FINOPS_CE_ENDPOINT_URL" in str(unreachable)
    assert isinstance(typed_error(psycopg.OperationalError("gone")), DatabaseError)
    assert typed_error(ValueError("a bug")) is None
    # The provider-neutral part knows no cloud SDK.
    assert typed_database_or_network_error(denied) is None


def test_the_error_module_imports_no_cloud_sdk() -> None:
    code = "import sys, finops_pipeline.errors; print(sorted(m for m in sys.modules if m.split('.')[0] in {'botocore', 'boto3', 'azure', 'google'}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_every_registered_provider_can_be_onboarded_and_validated() -> None:
    from finops_pipeline.providers import provider_specs

    for spec in provider_specs():
        assert spec.onboarding is not None, spec.name
        assert spec.validate is not None, spec.name
        assert spec.validation_report("x").paid_api == spec.paid_api


def test_every_sandbox_serves_its_own_demo_accounts() -> None:
    from finops_pipeline.providers import provider_specs

    sandboxes = [spec for spec in provider_specs() if spec.sandbox is not None]
    assert {spec.name for spec in sandboxes} >= {"aws", "azure"}
    for spec in sandboxes:
        assert spec.sandbox is not None
        accounts = spec.sandbox.demo_accounts()
        assert accounts, spec.name
        assert spec.sandbox.is_sandbox_endpoint(spec.sandbox.endpoint_url)
        assert not spec.sandbox.is_sandbox_endpoint("https://example.com")
        for account in accounts:
            assert account.credentials.kind in spec.credential_kinds
