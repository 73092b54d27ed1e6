"""Onboarding input and the validation probe, against the sandbox tenant through the real SDK."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.azure.onboarding import (
    build_azure_credentials,
    role_assignment_lines,
)
from finops_pipeline.providers.azure.sandbox import sandbox_credentials
from finops_pipeline.providers.azure.validation import probe_subscription, validate_account
from finops_pipeline.providers.base import ValidationReport
from finops_pipeline.security.credentials import Secret
from tests.providers.azure.conftest import NO_READER, PRODUCTION, SANDBOX_ENDPOINTS, TENANT

SUBSCRIPTION = str(uuid.uuid4())
APP = str(uuid.uuid4())
DIRECTORY = str(uuid.uuid4())


def build(**changes: object):
    fields: dict[str, object] = dict(
        subscription_id=SUBSCRIPTION,
        tenant_id=DIRECTORY,
        client_id=APP,
        client_secret=Secret("a-client-secret-value"),
    )
    fields.update(changes)
    return build_azure_credentials(**fields)  # type: ignore[arg-type]


def test_credentials_keep_a_custom_authority_only() -> None:
    assert build().authority_host is None
    assert build(authority_host="https://login.microsoftonline.com").authority_host is None
    government = build(
        endpoint_url="https://management.usgovcloudapi.net",
        authority_host="https://login.microsoftonline.us",
    )
    assert government.authority_host == "https://login.microsoftonline.us"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subscription_id": "my-subscription"}, "not an Azure subscription id"),
        ({"tenant_id": None}, "--azure-tenant-id and --client-id"),
        ({"client_secret": None}, "FINOPS_AZURE_CLIENT_SECRET or pipe it to --secret-stdin"),
        ({"client_id": "app"}, "client id must be a GUID"),
        ({"endpoint_url": "http://management.example"}, "https"),
        ({"authority_host": "https://login.example/tenant"}, "bare https"),
    ],
)
def test_bad_input_is_one_typed_line(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build(**changes)


def test_the_role_assignment_names_the_role_the_app_and_the_scope() -> None:
    text = "\n".join(role_assignment_lines(subscription_id=SUBSCRIPTION, client_id=APP))
    assert '--role "Cost Management Reader"' in text
    assert '--role "Reader"' in text  # Advisor's recommendations
    assert f"--assignee {APP}" in text and f"--scope /subscriptions/{SUBSCRIPTION}" in text


def validate(subscription_id: str, credentials=None):
    return probe_subscription(
        ValidationReport(account_id="acct"),
        subscription_id=subscription_id,
        credentials=credentials or sandbox_credentials(TENANT),
        endpoints=SANDBOX_ENDPOINTS,
        today=dt.datetime.now(dt.UTC).date(),
        client_hook=provider_spec("azure").client_hook,
    )


def test_validation_gets_a_token_then_probes_one_day_and_reports_its_qpu() -> None:
    report = validate(PRODUCTION.subscription_id)
    assert report.ok, report.checks
    assert [check.name for check in report.checks] == ["token", "cost_query"]
    assert report.quota_consumed == "1" and report.quota_unit == "QPU"
    assert "1 QPU" in report.checks[1].detail
    assert report.as_dict()["quota_consumed"] == "1"


def test_validation_names_the_missing_role_and_a_wrong_secret() -> None:
    denied = validate(NO_READER.subscription_id)
    assert not denied.ok and denied.checks[0].name == "token"
    assert "AzureAccessDeniedError" in denied.checks[-1].detail
    assert "Cost Management Reader" in denied.checks[-1].detail
    wrong = dataclasses.replace(sandbox_credentials(TENANT), client_secret=Secret("nope-000"))
    refused = validate(PRODUCTION.subscription_id, wrong)
    assert [check.name for check in refused.checks] == ["error"]
    assert "AzureAuthenticationError" in refused.checks[0].detail
    assert refused.quota_consumed is None  # no query is sent without a token


def test_the_registry_probe_refuses_credentials_of_another_cloud() -> None:
    account = CloudAccount(
        id="acct",
        tenant_id="contoso",
        name="prod",
        provider="azure",
        provider_account_id=PRODUCTION.subscription_id,
        credential_kind="aws_access_key",
        credentials_encrypted=b"",
        endpoint_url=None,
        status="active",
        created_at=dt.datetime.now(dt.UTC),
    )
    aws = AwsAccessKeyCredentials(
        access_key_id="AKIAEXAMPLE000000001", secret_access_key=Secret("x")
    )
    report = validate_account(account, aws, {})
    assert not report.ok and report.checks[0].name == "credential_kind"
