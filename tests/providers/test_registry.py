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
