"""Errors as a user meets them: one typed line and exit 1, never a traceback.

Real Postgres, a moto server over HTTP, dead and silent TCP endpoints, click's runner and, for
Ctrl-C, the real ``finops`` process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import click
import psycopg
import pytest
import requests
from botocore.config import Config
from click.testing import CliRunner, Result
from moto.core.authorization import enable_iam_authentication
from moto.server import ThreadedMotoServer
from sqlalchemy.engine import make_url

from finops_pipeline.cli.commands import main
from finops_pipeline.db.urls import to_libpq_url

pytestmark = pytest.mark.integration


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # Every moto server of a process shares one set of backends: start from a clean one.
    requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10).raise_for_status()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def dead_endpoint() -> str:
    """A local port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class SilentEndpoint:
    url: str
    connected: threading.Event


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    """Accepts connections and never answers, like a black-holed proxy."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    connected = threading.Event()
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            connected.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield SilentEndpoint(f"http://127.0.0.1:{server.getsockname()[1]}", connected)
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


@dataclass(frozen=True)
class User:
    arn: str
    access_key_id: str
    secret_access_key: str


def create_user(endpoint: str, name: str = "reader") -> User:
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return User(arn, key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def env(database_url: str, encryption_key: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "ENCRYPTION_KEYS_PREVIOUS": "",
        "FINOPS_HOME": str(tmp_path / "home"),
        "FINOPS_AWS_SECRET_ACCESS_KEY": "",
        "FINOPS_STS_ENDPOINT_URL": "",
        "FINOPS_CE_ENDPOINT_URL": "",
        "FINOPS_PIPELINE_AWS_ACCESS_KEY_ID": "",
        "FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY": "",
    }


def finops(env: dict[str, str], *args: str, **extra: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**env, **extra})


def add_keys(
    env: dict[str, str], user: User, endpoint: str, *extra_args: str, **extra_env: str
) -> Result:
    return finops(
        env,
        "accounts", "add", "--tenant", "acme", "--name", "acme dev",
        "--account-number", "123456789012", "--access-key-id", user.access_key_id,
        "--endpoint-url", endpoint, *extra_args,
        FINOPS_AWS_SECRET_ACCESS_KEY=user.secret_access_key,
        **extra_env,
    )  # fmt: skip


def assert_one_clean_line(result: Result, *expected: str) -> str:
    """Exit 1 through the CLI's own guard, one ``error:`` line, no traceback."""
    assert result.exit_code == 1, result.output
    # An exception that escaped the CLI would be kept here instead of a SystemExit.
    assert result.exc_info is not None and result.exc_info[0] is SystemExit, result.exc_info
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def stored(connection: psycopg.Connection) -> tuple[int, int]:
    accounts = connection.execute("SELECT count(*) FROM cloud_accounts").fetchone()
    tenants = connection.execute("SELECT count(*) FROM tenants").fetchone()
    assert accounts is not None and tenants is not None
    return accounts[0], tenants[0]


# --- item: validate honours FINOPS_STS_ENDPOINT_URL for access keys -----------------------


def test_validate_sends_sts_to_the_configured_endpoint_for_access_keys(
    env: dict[str, str], moto_endpoint: str
) -> None:
    user = create_user(moto_endpoint)
    added = add_keys(env, user, moto_endpoint)
    assert added.exit_code == 0, added.stderr
    account_id = added.stdout.strip()

    result = finops(
        env,
        "accounts", "validate", account_id, "--output", "json",
        FINOPS_STS_ENDPOINT_URL=moto_endpoint,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Only the moto server knows this user: GetCallerIdentity went there, not to AWS.
    assert report["caller_arn"] == user.arn
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        ("credentials_valid", True),
        ("cost_explorer_allowed", True),
    ]
    assert report["paid_requests"] == 1
    assert user.secret_access_key not in result.output


def test_validate_with_an_unreachable_sts_endpoint_reports_one_failed_check(
    env: dict[str, str], moto_endpoint: str, dead_endpoint: str, connection: psycopg.Connection
) -> None:
    user = create_user(moto_endpoint)
    account_id = add_keys(env, user, moto_endpoint).stdout.strip()

    text = finops(env, "accounts", "validate", account_id, FINOPS_STS_ENDPOINT_URL=dead_endpoint)
    as_json = finops(
        env,
        "accounts", "validate", account_id, "--output", "json",
        FINOPS_STS_ENDPOINT_URL=dead_endpoint,
    )  # fmt: skip

    for result in (text, as_json):
        assert result.exit_code == 1, result.output
        assert result.exc_info is not None and result.exc_info[0] is SystemExit
        assert "Traceback" not in result.output
    assert f"FAIL credentials_valid: could not reach STS at {dead_endpoint} " in text.stdout
    assert "(EndpointConnectionError)" in text.stdout
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["paid_requests"] == 0
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [("credentials_valid", False)]
    assert "FINOPS_STS_ENDPOINT_URL" in report["checks"][0]["detail"]
    # A failed validation changes nothing stored.
    assert stored(connection) == (1, 0)


def test_validate_names_a_wrong_secret_as_unrecognised_credentials(
    env: dict[str, str], moto_endpoint: str
) -> None:
    user = create_user(moto_endpoint)
    wrong = User(user.arn, user.access_key_id, user.secret_access_key[::-1])
    account_id = add_keys(env, wrong, moto_endpoint).stdout.strip()
    with enable_iam_authentication():  # the server now checks signatures, as AWS does
        result = finops(
            env, "accounts", "validate", account_id, FINOPS_STS_ENDPOINT_URL=moto_endpoint
        )
    assert result.exit_code == 1, result.output
    assert result.exc_info is not None and result.exc_info[0] is SystemExit
    assert "FAIL credentials_valid: AWS does not recognise these credentials" in result.stdout
    assert "paid Cost Explorer requests: 0" in result.stdout
    assert wrong.secret_access_key not in result.output


# --- item: one guard for every command -----------------------------------------------------


@pytest.fixture
def no_privileges_url(server_url: str, database_url: str) -> Iterator[str]:
    """A login with no grants at all, as a misconfigured deployment might use."""
    role = f"finops_nopriv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    url = make_url(database_url).set(username=role, password=None)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_database_refusal_is_one_line(env: dict[str, str], no_privileges_url: str) -> None:
    result = finops(env, "accounts", "list", DATABASE_URL=no_privileges_url)
    assert_one_clean_line(
        result,
        "[DatabaseError]",
        "InsufficientPrivilege",
        "permission denied",
        "GRANT finops_pipeline TO",
    )


def _sdk_call(kind: str, endpoint: str) -> None:
    """Really call AWS through boto3 so the real SDK raises the real error."""
    config = Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=1)
    client = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=config,
    )
    if kind == "client_error":
        client.get_user(UserName="nobody-by-this-name")
    else:
        client.list_users()


@pytest.fixture
def probe_command() -> Iterator[click.Command]:
    """A command on the real ``finops`` group that fails the way a test asks it to."""

    @click.command("probe-failure")
    @click.argument("kind")
    @click.argument("endpoint")
    def probe(kind: str, endpoint: str) -> None:
        if kind == "unexpected":
            raise ValueError("a bug nobody foresaw")
        if kind == "network":
            socket.create_connection(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])), timeout=2)
        _sdk_call(kind, endpoint)

    main.add_command(probe)
    yield probe
    main.commands.pop("probe-failure")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("dead", ["Could not connect to the endpoint URL", "(EndpointConnectionError)"]),
        ("silent", ["Read timeout on endpoint URL", "(ReadTimeoutError)", "[ProviderError]"]),
        ("client_error", ["AWS answered GetUser with NoSuchEntity", "[ProviderError]"]),
        ("network", ["(ConnectionRefusedError)", "[NetworkError]"]),
        ("unexpected", ["unexpected ValueError: a bug nobody foresaw", "-v"]),
    ],
)
def test_every_command_turns_sdk_and_network_errors_into_one_line(
    env: dict[str, str],
    probe_command: click.Command,
    moto_endpoint: str,
    dead_endpoint: str,
    silent_endpoint: SilentEndpoint,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    expected: list[str],
) -> None:
    endpoint = {"silent": silent_endpoint.url, "client_error": moto_endpoint}.get(
        kind, dead_endpoint
    )
    with caplog.at_level(logging.INFO):
        quiet = finops(env, "probe-failure", kind, endpoint)
    assert_one_clean_line(quiet, *expected)
    assert not [record for record in caplog.records if record.exc_info]

    caplog.clear()
    with caplog.at_level(logging.INFO):
        verbose = finops(env, "-v", "probe-failure", kind, endpoint)
    assert_one_clean_line(verbose, *expected)
    # -v still shows where it came from.
    assert [record for record in caplog.records if record.exc_info]


# --- item: accounts add --validate keeps nothing it did not prove -------------------------


def test_add_with_validate_keeps_nothing_when_sts_is_unreachable(
    env: dict[str, str], moto_endpoint: str, dead_endpoint: str, connection: psycopg.Connection
) -> None:
    user = create_user(moto_endpoint)
    result = add_keys(env, user, moto_endpoint, "--validate", FINOPS_STS_ENDPOINT_URL=dead_endpoint)
    assert_one_clean_line(result, "validation failed; the account was not kept")
    assert "FAIL credentials_valid" in result.stderr
    assert result.stdout == ""  # scripts capturing the id get nothing
    assert stored(connection) == (0, 0)


def test_add_with_validate_interrupted_keeps_nothing(
    env: dict[str, str],
    moto_endpoint: str,
    silent_endpoint: SilentEndpoint,
    connection: psycopg.Connection,
) -> None:
    """Ctrl-C while validation waits on STS: the account must not stay behind."""
    user = create_user(moto_endpoint)
    command = [
        sys.executable, "-m", "finops_pipeline.cli",
        "accounts", "add", "--tenant", "acme", "--name", "acme dev",
        "--account-number", "123456789012", "--access-key-id", user.access_key_id,
        "--endpoint-url", moto_endpoint, "--validate",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env={
            **os.environ,
            **env,
            "FINOPS_AWS_SECRET_ACCESS_KEY": user.secret_access_key,
            "FINOPS_STS_ENDPOINT_URL": silent_endpoint.url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job starts with SIGINT ignored; a user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert silent_endpoint.connected.wait(120), "validation never called STS"
        assert stored(connection)[0] == 1  # registered, now validating
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert "the account was not kept" in stderr and "Aborted!" in stderr
    assert stdout == ""
    assert stored(connection) == (0, 0)


# --- item: accounts validate --output json on an error -------------------------------------


def test_validate_json_prints_the_failed_check_on_an_error(
    env: dict[str, str], dead_endpoint: str
) -> None:
    unknown = "00000000-0000-0000-0000-00000000abcd"
    missing = finops(env, "accounts", "validate", unknown, "--output", "json")
    no_database = finops(
        env,
        "accounts", "validate", unknown, "--output", "json",
        DATABASE_URL=dead_endpoint.replace("http://", "postgresql://postgres@") + "/finops",
    )  # fmt: skip

    for result, error_type in ((missing, "AccountNotFoundError"), (no_database, "DatabaseError")):
        assert_one_clean_line(result, f"[{error_type}]")
        report = json.loads(result.stdout)
        assert report["account_id"] == unknown and report["ok"] is False
        assert report["paid_requests"] == 0
        (check,) = report["checks"]
        assert check["name"] == "error" and check["ok"] is False
        assert check["detail"].endswith(f"[{error_type}]")
