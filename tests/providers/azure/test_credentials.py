"""The azure_client_secret credential kind: registered, serialised, masked, refused when bad."""

from __future__ import annotations

import pickle
import uuid

import pytest

from finops_pipeline.errors import ConfigurationError, CredentialError
from finops_pipeline.providers import credential_class, provider_spec
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.security.credentials import (
    Credentials,
    Secret,
    deserialize_credentials,
    serialize_credentials,
)

TENANT = str(uuid.uuid4())
CLIENT = str(uuid.uuid4())
SECRET = "Xy8Q~abcdefghijklmnopqrstuvwxyz0123456789"


def credentials(**changes: object) -> AzureClientSecretCredentials:
    fields: dict[str, object] = dict(
        tenant_id=TENANT, client_id=CLIENT, client_secret=Secret(SECRET)
    )
    fields.update(changes)
    return AzureClientSecretCredentials(**fields)  # type: ignore[arg-type]


def test_the_kind_is_registered_through_the_azure_spec() -> None:
    assert credential_class("azure_client_secret") is AzureClientSecretCredentials
    assert provider_spec("azure").credential_kinds == ("azure_client_secret",)
    assert isinstance(credentials(), Credentials)


@pytest.mark.parametrize("authority", [None, "https://login.microsoftonline.us"])
def test_round_trips_through_the_serialised_payload(authority: str | None) -> None:
    original = credentials(authority_host=authority)
    payload = serialize_credentials(original)
    restored = deserialize_credentials(payload)
    assert restored == original
    assert restored.secrets() == (Secret(SECRET),)
    assert b'"kind":"azure_client_secret"' in payload


def test_the_secret_never_shows_in_repr_str_or_pickle() -> None:
    value = credentials()
    assert SECRET not in repr(value) and SECRET not in str(value)
    assert TENANT in repr(value)  # ids are not secret, and help an operator
    with pytest.raises(TypeError):
        pickle.dumps(value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tenant_id": "contoso.onmicrosoft.com"}, "tenant id must be a GUID"),
        ({"client_id": "my-app"}, "client id must be a GUID"),
        ({"client_secret": Secret("")}, "client secret is empty"),
        ({"authority_host": "http://login.example"}, "https URL"),
    ],
)
def test_bad_input_is_a_typed_configuration_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        credentials(**changes)


def test_a_malformed_stored_payload_says_so_without_quoting_values() -> None:
    payload = (
        b'{"kind":"azure_client_secret","tenant_id":"not-a-guid","client_id":"'
        + CLIENT.encode()
        + b'","client_secret":"'
        + SECRET.encode()
        + b'"}'
    )
    with pytest.raises(CredentialError, match="malformed") as raised:
        deserialize_credentials(payload)
    assert SECRET not in str(raised.value)
    missing = b'{"kind":"azure_client_secret","tenant_id":"' + TENANT.encode() + b'"}'
    with pytest.raises(CredentialError, match="'client_id' is missing"):
        deserialize_credentials(missing)
