"""Tenants, their STS external ids, and tenant-scoped transactions for Row-Level Security."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from finops_pipeline.errors import ConfigurationError

#: The database roles created by migration 0002; see the README's "Database roles" section.
PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"

#: The transaction-local setting the Row-Level Security policies compare ``tenant_id`` with.
TENANT_SETTING = "app.tenant_id"

# AWS allows 2-1224 characters from [\w+=,.@:/-]; 32 random bytes make it unguessable.
_EXTERNAL_ID_PREFIX = "finops-"


def check_tenant_id(tenant_id: str) -> str:
    """Return ``tenant_id`` if it can be stored; raise otherwise.

    A blank tenant would be stored but never seen: Row-Level Security reads an empty
    ``app.tenant_id`` as "no tenant". Surrounding whitespace is refused, not stripped, so
    ``"acme "`` never becomes a second, invisible-looking ``acme``. Migration 0003 enforces the
    same rule with a CHECK on every table that holds a tenant id.

    Raises:
        ConfigurationError: The tenant id is blank or has surrounding whitespace.
    """
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise ConfigurationError("The tenant id is blank; pass --tenant with the tenant's id.")
    if tenant_id != tenant_id.strip():
        raise ConfigurationError(
            f"The tenant id {tenant_id!r} has leading or trailing whitespace; pass it without."
        )
    return tenant_id


def new_external_id() -> str:
    """A fresh random external id, safe for an IAM trust policy condition."""
    return _EXTERNAL_ID_PREFIX + secrets.token_hex(20)


def ensure_tenant(connection: psycopg.Connection, tenant_id: str) -> str:
    """Return the tenant's external id, creating the tenant with a random one if it is new.

    The external id is chosen by us, once per tenant, and never changes: customers paste it
    into their role's trust policy. Storing it (rather than deriving it from the encryption
    key) keeps it stable across key rotations. Concurrent calls for one new tenant agree on
    one id.

    Args:
        connection: An autocommit connection.
        tenant_id: The tenant.

    Returns:
        The tenant's external id.
    """
    check_tenant_id(tenant_id)
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenants (tenant_id, external_id) VALUES (%s, %s) "
            "ON CONFLICT (tenant_id) DO NOTHING",
            (tenant_id, new_external_id()),
        )
        cursor.execute("SELECT external_id FROM tenants WHERE tenant_id = %s", (tenant_id,))
        row = cursor.fetchone()
    if row is None:  # only possible when RLS hides the row from a non-pipeline role
        raise ConfigurationError(
            f"Tenant {tenant_id!r} is not visible to this database role; run onboarding as a "
            f"member of {PIPELINE_ROLE}."
        )
    return str(row[0])


@contextmanager
def tenant_transaction(connection: psycopg.Connection, tenant_id: str) -> Iterator[None]:
    """A transaction in which Row-Level Security shows only ``tenant_id``'s rows.

    ``set_config(..., true)`` is transaction-local, so a pooled connection returned after the
    transaction ends carries no tenant into its next use.

    Args:
        connection: An autocommit connection (so this is a real transaction, not a savepoint).
        tenant_id: The tenant whose rows the transaction may see and write.
    """
    check_tenant_id(tenant_id)
    with connection.transaction():
        # Bound parameter: a tenant id is data, never SQL.
        connection.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, tenant_id))
        yield


def tenant_ids(connection: psycopg.Connection) -> list[str]:
    """Every tenant with an account or an external id, sorted (the pipeline role sees all).

    ``tenants`` only holds tenants that were given an external id (role accounts), so the
    tenants of access-key accounts come from ``cloud_accounts``.
    """
    rows = connection.execute(
        "SELECT tenant_id FROM tenants UNION SELECT tenant_id FROM cloud_accounts ORDER BY 1"
    ).fetchall()
    return [str(row[0]) for row in rows]
