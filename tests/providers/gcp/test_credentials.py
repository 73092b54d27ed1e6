"""The gcp_service_account credential kind: the whole key file and the export, encrypted."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from finops_pipeline.errors import CredentialError
from finops_pipeline.providers import credential_class, provider_spec
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.errors import BillingExportSettingError, BillingTableNameError
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing, decrypt, encrypt
from finops_pipeline.security.credentials import (
    deserialize_credentials,
    serialize_credentials,
)

TABLE = "billing-host-01.cloud_billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"


def _credentials(info: dict[str, Any], **overrides: Any) -> GcpServiceAccountCredentials:
    fields: dict[str, Any] = {
        "key": ServiceAccountKey.from_json(json.dumps(info)),
        "table": TABLE,
        "location": "EU",
        "api_endpoint": "https://bigquery.example.test",
        "token_endpoint": "https://oauth.example.test/token",
    }
    fields.update(overrides)
    return GcpServiceAccountCredentials(**fields)


def test_gcp_is_registered_with_its_kind_and_resource() -> None:
    spec = provider_spec("gcp")
    assert spec.credential_kinds == ("gcp_service_account",)
    assert spec.resource_key == "gcp_billing_export"
    assert credential_class("gcp_service_account") is GcpServiceAccountCredentials


def test_the_whole_key_and_the_export_round_trip_through_encryption(
    reader_key_info: dict[str, Any],
) -> None:
    credentials = _credentials(reader_key_info, job_project="jobs-project-1")
    ring = KeyRing(b"k" * 32)
    context = EncryptionContext(tenant_id="t", account_id="a", credential_kind=credentials.kind)
    blob = encrypt(serialize_credentials(credentials), ring, context)
    assert b"PRIVATE KEY" not in blob and reader_key_info["client_email"].encode() not in blob
    restored = deserialize_credentials(decrypt(blob, ring, context))
    assert isinstance(restored, GcpServiceAccountCredentials)
    assert json.loads(restored.key.key_json.reveal()) == reader_key_info
    assert restored.export_key == credentials.export_key
    assert restored.billing_export().billing_project == "jobs-project-1"
    assert restored.billing_export().token_uri == "https://oauth.example.test/token"


def test_repr_and_str_show_who_and_which_table_never_the_key(
    reader_key_info: dict[str, Any],
) -> None:
    credentials = _credentials(reader_key_info)
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert reader_key_info["client_email"] in text and TABLE in text
        assert reader_key_info["private_key_id"] not in text
        assert "PRIVATE KEY" not in text
    secrets = [secret.reveal() for secret in credentials.secrets()]
    assert reader_key_info["private_key"] in secrets
    assert reader_key_info["private_key_id"] in secrets
    with pytest.raises(TypeError):
        pickle.dumps(credentials)


def test_two_keys_of_one_service_account_never_share_an_export_key(
    reader_key_info: dict[str, Any],
) -> None:
    other = dict(reader_key_info, private_key_id="0" * 40)
    assert _credentials(reader_key_info).export_key != _credentials(other).export_key


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"table": "p.d.t`; DROP TABLE x; --"}, BillingTableNameError),
        ({"table": "billing-host-01.cloud_billing"}, BillingTableNameError),
        ({"location": "US; SELECT 1"}, BillingExportSettingError),
        ({"api_endpoint": "http://bigquery.example.test"}, BillingExportSettingError),
        ({"token_endpoint": "https://user:pw@oauth.example.test/token"}, BillingExportSettingError),
    ],
)
def test_a_bad_export_definition_is_refused_before_it_is_stored(
    reader_key_info: dict[str, Any], overrides: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _credentials(reader_key_info, **overrides)


def test_a_malformed_stored_payload_is_a_typed_error_quoting_nothing(
    reader_key_info: dict[str, Any],
) -> None:
    payload = {
        "kind": "gcp_service_account",
        "service_account_json": json.dumps(dict(reader_key_info, type="authorized_user")),
        "table": TABLE,
        "location": "US",
    }
    with pytest.raises(CredentialError, match="malformed") as caught:
        deserialize_credentials(json.dumps(payload).encode())
    assert reader_key_info["private_key_id"] not in str(caught.value)
    payload["service_account_json"] = json.dumps(reader_key_info)
    payload.pop("table")
    with pytest.raises(CredentialError, match="'table' is missing"):
        deserialize_credentials(json.dumps(payload).encode())
