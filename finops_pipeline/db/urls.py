"""Pure helpers that rewrite PostgreSQL connection URLs for the three clients we use.

The project talks to one database through three drivers, and each wants its own URL form:

* our loader (SQLAlchemy + psycopg 3): ``postgresql+psycopg://``
* dagster-postgres (SQLAlchemy + psycopg2): ``postgresql+psycopg2://``
* ``psycopg.connect`` and ``psql`` (libpq): ``postgresql://``

The helpers work on the string rather than round-tripping through
``sqlalchemy.engine.make_url``, because ``URL.render_as_string`` re-encodes the query string
(``?host=/run/pg`` becomes ``?host=%2Frun%2Fpg``) and cannot parse every URL libpq accepts
(several hosts, a password in the query string). Only the scheme, the password or the database
name is ever changed; everything else is kept byte for byte.

No function here puts a URL into an error message: a URL may hold a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from finops_pipeline.errors import ConfigurationError

#: Schemes accepted as "a PostgreSQL server", lower case. Other drivers (asyncpg, pg8000, ...)
#: are refused rather than silently swapped, because their query parameters differ.
_POSTGRES_SCHEMES: frozenset[str] = frozenset(
    {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
)

# A scheme per RFC 3986. Only a string that matches this is ever quoted back in an error, so a
# malformed URL cannot smuggle its password into a message through the "scheme".
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)

# Query parameters that libpq treats as secrets.
_SECRET_QUERY_KEYS: frozenset[str] = frozenset({"password", "sslpassword"})

# key=value connection strings ("host=x password=y") are not URLs, but may reach redact_url.
_KEYWORD_SECRET_RE = re.compile(
    r"\b(?P<key>password|sslpassword)\s*=\s*(?:'(?:\\.|[^'\\])*'|\S*)", re.IGNORECASE
)

_REDACTED = "***"


@dataclass(frozen=True)
class _UrlParts:
    """A URL cut into the pieces the helpers rewrite.

    Attributes:
        scheme: The scheme as written, e.g. ``postgres`` or ``postgresql+psycopg2``.
        userinfo: Text before the ``@`` that ends the credentials, or None when absent.
        host: Host, port or comma-separated host list; empty for a Unix-socket URL.
        path: ``/dbname`` or empty.
        query: ``?key=value&...`` (with any fragment) or empty.
    """

    scheme: str
    userinfo: str | None
    host: str
    path: str
    query: str

    def render(self, scheme: str | None = None) -> str:
        """Put the pieces back together, optionally under another scheme.

        Args:
            scheme: Scheme to use instead of the original one.

        Returns:
            The URL as a string.
        """
        credentials = "" if self.userinfo is None else f"{self.userinfo}@"
        return f"{scheme or self.scheme}://{credentials}{self.host}{self.path}{self.query}"


def _find_userinfo_end(rest: str, *, conservative: bool) -> int:
    """Return the index of the ``@`` that ends the credentials in ``rest``, or -1.

    Passwords are often pasted without percent-encoding, so they may contain ``@``, ``/``, ``?``
    or ``:``. We therefore take the *last* ``@`` before the first ``?`` that follows the first
    ``@``: that keeps ``u:p@ss@host`` and ``u:p?w@host`` whole while an ``@`` in the query
    string (``?application_name=a@b``) is not mistaken for the end of the credentials.

    With ``conservative`` False, an ``@`` that follows ``/path?`` is read as part of the query
    (``postgresql://h:5432/db?application_name=a@b``), as libpq reads it. Redaction passes
    True instead, so a password holding a raw ``/`` and ``?`` is still hidden, at the price of
    also hiding the host in that rare query case.

    Args:
        rest: The URL after ``scheme://``.
        conservative: Prefer reading ambiguous text as credentials.

    Returns:
        Index into ``rest``, or -1 when the URL carries no credentials.
    """
    first_at = rest.find("@")
    if first_at == -1:
        return -1
    first_question = rest.find("?", 0, first_at)
    if not conservative and first_question != -1 and "/" in rest[:first_question]:
        return -1
    query_start = rest.find("?", first_at)
    end = rest.rfind("@", 0, len(rest) if query_start == -1 else query_start)
    candidate = rest[:end]
    # "host/db@x" with no colon is a path containing "@", not a user name.
    if "/" in candidate and ":" not in candidate:
        return -1
    return end


def _split(url: str, *, conservative: bool = False) -> _UrlParts | None:
    """Cut ``url`` into parts, or return None when it is not a ``scheme://`` URL.

    Args:
        url: Any string.
        conservative: Passed to :func:`_find_userinfo_end`.

    Returns:
        The parts, or None.
    """
    match = _URL_RE.match(url.strip())
    if match is None:
        return None
    scheme, rest = match.group("scheme"), match.group("rest")
    at = _find_userinfo_end(rest, conservative=conservative)
    userinfo = rest[:at] if at != -1 else None
    after = rest[at + 1 :] if at != -1 else rest
    host_end = len(after)
    for separator in ("/", "?", "#"):
        index = after.find(separator)
        if index != -1:
            host_end = min(host_end, index)
    host, tail = after[:host_end], after[host_end:]
    query_start = tail.find("?")
    if query_start == -1:
        path, query = tail, ""
    else:
        path, query = tail[:query_start], tail[query_start:]
    return _UrlParts(scheme=scheme, userinfo=userinfo, host=host, path=path, query=query)


def _parse_postgres(url: str) -> _UrlParts:
    """Split a URL and check that it names a PostgreSQL server.

    Args:
        url: A database URL.

    Returns:
        The URL's parts.

    Raises:
        ConfigurationError: ``url`` is not a URL, or its scheme is not a PostgreSQL one. The
            message names at most the scheme, never the rest of the URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            "The database URL is empty; expected postgresql://user:password@host:port/dbname."
        )
    parts = _split(url)
    if parts is None:
        raise ConfigurationError(
            "The database URL is not a URL; expected postgresql://user:password@host:port/dbname "
            "(key=value connection strings are not accepted)."
        )
    if parts.scheme.lower() not in _POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"The database URL scheme {parts.scheme!r} is not supported; use a PostgreSQL URL "
            "such as postgresql://user:password@host:port/dbname."
        )
    return parts


def to_psycopg_url(url: str) -> str:
    """Rewrite a PostgreSQL URL for SQLAlchemy with psycopg 3 (``postgresql+psycopg://``).

    Args:
        url: A ``postgres://``, ``postgresql://``, ``postgresql+psycopg2://`` or
            ``postgresql+psycopg://`` URL. Query parameters such as ``?host=/socket/dir`` are
            kept as written.

    Returns:
        The same URL with the ``postgresql+psycopg`` scheme.

    Raises:
        ConfigurationError: ``url`` is not a PostgreSQL URL.
    """
    return _parse_postgres(url).render("postgresql+psycopg")


def to_psycopg2_url(url: str) -> str:
    """Rewrite a PostgreSQL URL for SQLAlchemy with psycopg2 (``postgresql+psycopg2://``).

    dagster-postgres needs this form: with SQLAlchemy 2.1 a bare ``postgresql://`` selects
    psycopg 3, and dagster-postgres' event-log writes then fail.

    Args:
        url: A PostgreSQL URL in any of the accepted schemes.

    Returns:
        The same URL with the ``postgresql+psycopg2`` scheme.

    Raises:
        ConfigurationError: ``url`` is not a PostgreSQL URL.
    """
    return _parse_postgres(url).render("postgresql+psycopg2")


def to_libpq_url(url: str) -> str:
    """Rewrite a PostgreSQL URL for libpq (``psycopg.connect``, ``psql``): ``postgresql://``.

    Args:
        url: A PostgreSQL URL in any of the accepted schemes.

    Returns:
        The same URL with the plain ``postgresql`` scheme.

    Raises:
        ConfigurationError: ``url`` is not a PostgreSQL URL.
    """
    return _parse_postgres(url).render("postgresql")


def _rewrite_query(query: str, keys: frozenset[str], value: str) -> str:
    """Replace the value of every query parameter named in ``keys``.

    Args:
        query: ``?a=b&c=d`` (optionally with a ``#fragment``) or empty.
        keys: Lower-case parameter names to rewrite.
        value: The new, already encoded, value.

    Returns:
        The query with those parameters rewritten and everything else untouched.
    """
    if not query:
        return query
    fragment_start = query.find("#")
    if fragment_start == -1:
        body, fragment = query, ""
    else:
        body, fragment = query[:fragment_start], query[fragment_start:]
    items = body[1:].split("&")
    for index, item in enumerate(items):
        key, sep, _old = item.partition("=")
        if sep and key.strip().lower() in keys:
            items[index] = f"{key}={value}"
    return "?" + "&".join(items) + fragment


def redact_url(url: str) -> str:
    """Hide the password of a database URL so it can go to logs and the UI.

    Works for any scheme (it never raises), for libpq-only forms such as
    ``postgresql://u:p@/db?host=/socket`` or several hosts, for passwords given as a
    ``password=`` query parameter, and for key=value connection strings. An empty password
    stays empty, so the output still tells "no password" apart from "a password".

    Args:
        url: A database URL (or anything a user put in ``DATABASE_URL``).

    Returns:
        The URL with every password replaced by ``***``.
    """
    if not isinstance(url, str):
        return _REDACTED
    parts = _split(url, conservative=True)
    if parts is None:
        return _KEYWORD_SECRET_RE.sub(lambda m: f"{m.group('key')}={_REDACTED}", url)
    userinfo = parts.userinfo
    if userinfo is not None:
        user, sep, password = userinfo.partition(":")
        if sep and password:
            userinfo = f"{user}:{_REDACTED}"
    redacted = _UrlParts(
        scheme=parts.scheme,
        userinfo=userinfo,
        host=parts.host,
        path=parts.path,
        query=_rewrite_query(parts.query, _SECRET_QUERY_KEYS, _REDACTED),
    )
    return redacted.render()


def with_database(url: str, dbname: str) -> str:
    """Point a PostgreSQL URL at another database on the same server.

    Scheme, credentials, host and query parameters are kept; a ``dbname=`` query parameter,
    which libpq would let override the path, is rewritten too.

    Args:
        url: A PostgreSQL URL in any of the accepted schemes.
        dbname: Name of the other database; percent-encoded as needed.

    Returns:
        The URL naming ``dbname``.

    Raises:
        ConfigurationError: ``url`` is not a PostgreSQL URL or ``dbname`` is empty.
    """
    parts = _parse_postgres(url)
    if not dbname:
        raise ConfigurationError("The database name is empty.")
    encoded = quote(dbname, safe="")
    query = _rewrite_query(parts.query, frozenset({"dbname"}), encoded)
    return _UrlParts(
        scheme=parts.scheme,
        userinfo=parts.userinfo,
        host=parts.host,
        path=f"/{encoded}",
        query=query,
    ).render()
