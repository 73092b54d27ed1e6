"""Tests for the pure URL helpers in finops_pipeline.db.urls."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from finops_pipeline.db.urls import (
    redact_url,
    to_libpq_url,
    to_psycopg2_url,
    to_psycopg_url,
    with_database,
)
from finops_pipeline.errors import ConfigurationError

SECRET = "s3cr3t-Pa55"

SOCKET_URL = "postgresql://postgres:@/postgres?host=/var/lib/finops/pgdata"


@pytest.mark.parametrize(
    "url",
    [
        f"postgres://app:{SECRET}@db.example.com:5432/finops",
        f"postgresql://app:{SECRET}@db.example.com:5432/finops",
        f"postgresql+psycopg2://app:{SECRET}@db.example.com:5432/finops",
        f"postgresql+psycopg://app:{SECRET}@db.example.com:5432/finops",
        f"PostgreSQL://app:{SECRET}@db.example.com:5432/finops",
    ],
)
def test_every_postgres_scheme_is_normalised(url: str) -> None:
    tail = f"app:{SECRET}@db.example.com:5432/finops"
    assert to_psycopg_url(url) == f"postgresql+psycopg://{tail}"
    assert to_psycopg2_url(url) == f"postgresql+psycopg2://{tail}"
    assert to_libpq_url(url) == f"postgresql://{tail}"


@pytest.mark.parametrize(
    ("url", "tail"),
    [
        (SOCKET_URL, "postgres:@/postgres?host=/var/lib/finops/pgdata"),
        ("postgres:///finops?host=/run/postgresql", "/finops?host=/run/postgresql"),
        (
            "postgresql://u:p@/db?host=/tmp/a%20b&sslmode=disable",
            "u:p@/db?host=/tmp/a%20b&sslmode=disable",
        ),
        ("postgresql://u@h1:5432,h2:5433/db?target_session_attrs=any", None),
        ("postgresql://[::1]:5432/db", None),
    ],
)
def test_query_and_host_are_kept_byte_for_byte(url: str, tail: str | None) -> None:
    expected_tail = tail if tail is not None else url.split("://", 1)[1]
    assert to_psycopg_url(url) == f"postgresql+psycopg://{expected_tail}"
    assert to_psycopg2_url(url) == f"postgresql+psycopg2://{expected_tail}"
    assert to_libpq_url(url) == f"postgresql://{expected_tail}"


def test_socket_url_is_understood_by_sqlalchemy() -> None:
    parsed = make_url(to_psycopg_url(SOCKET_URL))
    assert parsed.drivername == "postgresql+psycopg"
    assert parsed.query["host"] == "/var/lib/finops/pgdata"
    assert parsed.database == "postgres"
    assert make_url(to_psycopg2_url(SOCKET_URL)).drivername == "postgresql+psycopg2"


def test_surrounding_whitespace_is_ignored() -> None:
    assert to_libpq_url("  postgres://u@h/db\n") == "postgresql://u@h/db"


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        (f"mysql://root:{SECRET}@localhost/db", "mysql"),
        (f"sqlite:///{SECRET}.db", "sqlite"),
        (f"postgresql+asyncpg://u:{SECRET}@h/db", "postgresql+asyncpg"),
        (f"https://u:{SECRET}@h/db", "https"),
    ],
)
def test_other_schemes_are_refused_naming_only_the_scheme(url: str, scheme: str) -> None:
    for convert in (to_psycopg_url, to_psycopg2_url, to_libpq_url):
        with pytest.raises(ConfigurationError) as caught:
            convert(url)
        message = str(caught.value)
        assert repr(scheme) in message
        assert SECRET not in message
        assert url not in message


@pytest.mark.parametrize(
    "url",
    ["", "   ", f"host=db user=app password={SECRET}", f"app:{SECRET}@db/finops"],
)
def test_non_urls_are_refused_without_echo(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        to_psycopg_url(url)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"postgresql://app:{SECRET}@db:5432/finops",
            "postgresql://app:***@db:5432/finops",
        ),
        (
            f"postgresql+psycopg2://app:{SECRET}@db/finops?sslmode=require",
            "postgresql+psycopg2://app:***@db/finops?sslmode=require",
        ),
        (
            f"postgresql://app:{SECRET}@/finops?host=/run/pg",
            "postgresql://app:***@/finops?host=/run/pg",
        ),
        (SOCKET_URL, SOCKET_URL),
        ("postgresql://app@db/finops", "postgresql://app@db/finops"),
        (
            f"postgresql://db/finops?user=app&password={SECRET}&sslpassword={SECRET}",
            "postgresql://db/finops?user=app&password=***&sslpassword=***",
        ),
        # Unencoded special characters in the password must not leak.
        (f"postgresql://app:{SECRET}@x@db/finops", "postgresql://app:***@db/finops"),
        (f"postgresql://app:{SECRET}/x?y@db/finops", "postgresql://app:***@db/finops"),
        (f"postgresql://app:{SECRET}:z@h1:1,h2:2/db", "postgresql://app:***@h1:1,h2:2/db"),
        (f"mysql://root:{SECRET}@localhost/db", "mysql://root:***@localhost/db"),
        (
            f"host=db user=app password={SECRET} dbname=x",
            "host=db user=app password=*** dbname=x",
        ),
        (f"host=db password='{SECRET} x' dbname=x", "host=db password=*** dbname=x"),
    ],
)
def test_redact_url_hides_every_password(url: str, expected: str) -> None:
    redacted = redact_url(url)
    assert redacted == expected
    assert SECRET not in redacted


def test_redact_url_matches_sqlalchemy_for_ordinary_urls() -> None:
    url = f"postgresql+psycopg://app:{SECRET}@db:5432/finops"
    assert redact_url(url) == make_url(url).render_as_string(hide_password=True)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (SOCKET_URL, "postgresql://postgres:@/test_1?host=/var/lib/finops/pgdata"),
        (
            "postgresql+psycopg://u:p@db:5432/finops?sslmode=require",
            "postgresql+psycopg://u:p@db:5432/test_1?sslmode=require",
        ),
        ("postgres://u@db", "postgres://u@db/test_1"),
        ("postgresql://db?host=/s", "postgresql://db/test_1?host=/s"),
        (
            "postgresql:///old?dbname=old&host=/s",
            "postgresql:///test_1?dbname=test_1&host=/s",
        ),
        (
            "postgresql://db:5432/old?application_name=a@b",
            "postgresql://db:5432/test_1?application_name=a@b",
        ),
    ],
)
def test_with_database(url: str, expected: str) -> None:
    assert with_database(url, "test_1") == expected


def test_with_database_encodes_the_name() -> None:
    url = with_database("postgresql://u@db/x", "a b/c")
    assert url == "postgresql://u@db/a%20b%2Fc"
    assert make_url(url).database == "a b/c"


def test_with_database_refuses_bad_input() -> None:
    with pytest.raises(ConfigurationError):
        with_database("postgresql://u@db/x", "")
    with pytest.raises(ConfigurationError) as caught:
        with_database(f"mysql://u:{SECRET}@db/x", "y")
    assert SECRET not in str(caught.value)
