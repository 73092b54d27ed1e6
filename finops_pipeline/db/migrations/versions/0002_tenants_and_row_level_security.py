"""Tenants with their external ids, Row-Level Security per tenant, and the database roles.

Roles (cluster-wide, so created only if missing; many databases share one server):

- ``finops_pipeline`` (NOLOGIN): the pipeline's group role. A policy branch lets its members
  read and write every tenant's rows, because the pipeline loads all accounts. Grant it to the
  login role the pipeline and ``finops`` CLI connect as.
- ``finops_reporting`` (NOLOGIN): read-only, for dashboards. It sees only the rows of the tenant
  named by ``set_config('app.tenant_id', <tenant>, true)`` in the current transaction, and
  nothing at all when no tenant is set. It cannot read the encrypted credentials column or the
  external ids. Grant it to each dashboard's login role.

Superusers and roles with BYPASSRLS skip every policy; ``FORCE ROW LEVEL SECURITY`` makes the
table owner obey them too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"
_TENANT_TABLES = ("cloud_accounts", "cost_data", "account_sync_runs", "tenants")

# NULLIF: after a transaction that used set_config(..., true) ends, the setting reads as ''
# rather than NULL for the rest of the session; both must match no tenant.
_TENANT_MATCH = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')"


def _create_role_if_missing(name: str) -> None:
    # A concurrent migration of another database may create the role between the check and
    # the CREATE; duplicate_object means it now exists, which is all we need.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                BEGIN
                    CREATE ROLE {name} NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;
                END;
            END IF;
        END
        $$
        """
    )


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tenants (
            tenant_id text PRIMARY KEY,
            external_id text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    _create_role_if_missing(PIPELINE_ROLE)
    _create_role_if_missing(REPORTING_ROLE)

    for table in _TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        # Permissive policies are OR-ed: a session sees a row if either one allows it.
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({_TENANT_MATCH}) WITH CHECK ({_TENANT_MATCH})"
        )
        op.execute(
            f"CREATE POLICY pipeline_all_tenants ON {table} TO {PIPELINE_ROLE} "
            "USING (true) WITH CHECK (true)"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {PIPELINE_ROLE}")

    # FORCE makes the tables' owner (the role running this migration, usually the pipeline's
    # own login) obey the policies; a superuser skips them anyway. Anyone else must be in
    # finops_pipeline or the pipeline would silently see no accounts at all.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
               AND NOT pg_has_role(current_user, '{PIPELINE_ROLE}', 'MEMBER') THEN
                BEGIN
                    EXECUTE format('GRANT {PIPELINE_ROLE} TO %I', current_user);
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'role % must be a member of {PIPELINE_ROLE} to run the '
                        'pipeline under row-level security', current_user
                        USING HINT = 'As a superuser: GRANT {PIPELINE_ROLE} TO '
                            || quote_ident(current_user) || '; then run finops db upgrade again.';
                END;
            END IF;
        END
        $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {PIPELINE_ROLE}, {REPORTING_ROLE}")
    op.execute(f"GRANT SELECT ON cost_data, account_sync_runs TO {REPORTING_ROLE}")
    # Column grants: dashboards never need the ciphertext or the external id.
    op.execute(
        f"""
        GRANT SELECT (id, tenant_id, name, provider, provider_account_id, credential_kind,
                      endpoint_url, status, created_at, updated_at, last_sync_at,
                      last_sync_status, last_sync_error, last_sync_rows, last_sync_run_id,
                      last_sync_attempt_at, last_sync_range_start, last_sync_range_end)
        ON cloud_accounts TO {REPORTING_ROLE}
        """
    )
    op.execute(f"GRANT SELECT (tenant_id, created_at) ON tenants TO {REPORTING_ROLE}")


def downgrade() -> None:
    for table in _TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"DROP POLICY IF EXISTS pipeline_all_tenants ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM {PIPELINE_ROLE}, {REPORTING_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {PIPELINE_ROLE}, {REPORTING_ROLE}")
    # The roles stay: they are cluster-wide and other databases on the server may use them.
    op.execute("DROP TABLE tenants")
