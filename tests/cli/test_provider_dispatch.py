"""``finops accounts add`` and ``validate`` reach a provider only through its registry entry.

A stand-in provider is registered under ``gcp`` (a name ``cloud_accounts`` accepts) with its own
credential kind, onboarding and validation probe; real Postgres, real encryption, click's runner.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from click.testing import CliRunner, Result

from finops_pipeline import providers
from finops_pipeline.cli.commands import main
from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.base import (
    AccountOnboarding,
    ProviderSpec,
    SecretReader,
    ValidationReport,
)
from finops_pipeline.security.credentials import Credentials, Secret, payload_field

pytestmark = pytest.mark.integration

TOKEN = "tok-0123456789-never-printed"
TOKEN_ENV = "FINOPS_STANDIN_TOKEN"


@dataclass(frozen=True)
class StandInToken:
    KIND: ClassVar[str] = "standin_token"

    project: str
    token: Secret

    @property
    def kind(self) -> str:
        return self.KIND

    def to_payload(self) -> dict[str, str]:
        return {"project": self.project, "token": self.token.reveal()}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StandInToken:
        return cls(
            project=str(payload_field(payload, "project")),
            token=Secret(str(payload_field(payload, "token"))),
        )

    def secrets(self) -> tuple[Secret, ...]:
        return (self.token,)


@dataclass
class Calls:
    validated: list[dict[str, Any]] = field(default_factory=list)


CALLS = Calls()


def build_standin(
    *, provider_account_id: str, external_id: str | None, token: Secret | None = None
) -> Credentials:
    if not token:
        raise ConfigurationError(f"No token given; set {TOKEN_ENV}.")
    return StandInToken(project=provider_account_id, token=token)


def standin_inputs(
    options: Mapping[str, Any], read_secret: SecretReader, note: Callable[[str], None]
) -> dict[str, Any]:
    note("reading the stand-in token")
    return {"token": read_secret(TOKEN_ENV, bool(options["secret_stdin"]))}


def standin_validate(
    account: CloudAccount,
    credentials: Credentials,
    endpoints: Mapping[str, str | None],
    *,
    client_hook: Any = None,
    today: dt.date | None = None,
) -> ValidationReport:
    assert isinstance(credentials, StandInToken)
    CALLS.validated.append(
        {
            "account": account.id,
            "token": credentials.token.reveal(),
            "endpoint": account.endpoint_url or endpoints.get("ce_endpoint_url"),
            "hook": client_hook,
        }
    )
    report = STANDIN.validation_report(account.id)
    report.paid_requests = 1
    report.add("token_accepted", True, f"project {credentials.project} answered")
    return report


def _hook(client: Any, endpoint_url: str | None) -> None:
    """The stand-in's client hook; validation must receive exactly this one."""


STANDIN = ProviderSpec(
    name="gcp",
    display_name="Stand-in Billing",
    credential_classes=(StandInToken,),
    resource_key="standin_billing",
    client_hook=_hook,
    onboarding=AccountOnboarding(
        build_credentials=build_standin,
        uses_tenant_external_id=lambda inputs: False,
        inputs_from_options=standin_inputs,
        onboarding_text=lambda added, options: f"grant billing viewer on {added.account_id}",
    ),
    validate=standin_validate,
    paid_api="Stand-in Billing",
    price_per_request_usd="0.25",
)
STANDIN_WITHOUT_PROBE = ProviderSpec(
    name="gcp",
    display_name="Stand-in Billing",
    credential_classes=(StandInToken,),
    resource_key="standin_billing",
    onboarding=STANDIN.onboarding,
)


@pytest.fixture
def env(database_url: str, encryption_key: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_HOME": str(tmp_path / "home"),
        "ENCRYPTION_KEYS_PREVIOUS": "",
        TOKEN_ENV: TOKEN,
        "FINOPS_CE_ENDPOINT_URL": "https://billing.example.invalid",
    }


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    CALLS.validated.clear()

    def register(attribute: str) -> None:
        monkeypatch.setitem(providers._REGISTERED, "gcp", f"{__name__}:{attribute}")

    register("STANDIN")
    return register


def finops(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=input)


def add(env: dict[str, str]) -> Result:
    return finops(
        env,
        "accounts", "add", "--tenant", "tenant-a", "--name", "billing", "--provider", "gcp",
        "--account-number", "project-7",
    )  # fmt: skip


def test_add_builds_the_providers_credentials_and_prints_its_onboarding_text(
    env: dict[str, str], standin: Any, connection: psycopg.Connection
) -> None:
    result = add(env)
    assert result.exit_code == 0, result.stderr
    account_id = result.stdout.strip()
    assert "note: reading the stand-in token" in result.stderr
    assert "registered standin_token account" in result.stderr
    assert f"grant billing viewer on {account_id}" in result.stderr
    assert TOKEN not in result.output and TOKEN not in result.stderr
    row = connection.execute(
        "SELECT provider, credential_kind, position(%s::bytea in credentials_encrypted) "
        "FROM cloud_accounts WHERE id = %s",
        (TOKEN.encode(), account_id),
    ).fetchone()
    assert row == ("gcp", "standin_token", 0)


def test_bad_provider_input_is_its_typed_error_and_stores_nothing(
    env: dict[str, str], standin: Any, connection: psycopg.Connection
) -> None:
    result = add({**env, TOKEN_ENV: ""})
    assert result.exit_code == 1
    assert f"No token given; set {TOKEN_ENV}. [ConfigurationError]" in result.stderr
    assert connection.execute("SELECT count(*) FROM cloud_accounts").fetchone() == (0,)


def test_validate_runs_the_providers_probe_with_decrypted_credentials(
    env: dict[str, str], standin: Any
) -> None:
    account_id = add(env).stdout.strip()
    text = finops(env, "accounts", "validate", account_id)
    assert text.exit_code == 0, text.output
    assert "ok   token_accepted: project project-7 answered" in text.stdout
    assert "paid Stand-in Billing requests: 1 ($0.25)" in text.stdout
    as_json = finops(env, "accounts", "validate", account_id, "--output", "json")
    assert json.loads(as_json.stdout)["paid_request_cost_usd"] == "0.25"
    assert CALLS.validated[0] == {
        "account": account_id,
        "token": TOKEN,
        "endpoint": "https://billing.example.invalid",
        "hook": _hook,
    }
    assert TOKEN not in text.output + as_json.output


def test_a_provider_without_a_probe_fails_validation_with_a_clear_check(
    env: dict[str, str], standin: Callable[[str], None]
) -> None:
    account_id = add(env).stdout.strip()
    standin("STANDIN_WITHOUT_PROBE")
    result = finops(env, "accounts", "validate", account_id)
    assert result.exit_code == 1
    assert "FAIL provider: no validation for provider 'gcp' yet" in result.stdout
    assert CALLS.validated == []
