"""Savings recommendations and cost anomalies per account.

``cost_recommendations`` holds every provider recommendation ever seen for an account, one row
per (account, provider, source, resource): a weekly refresh replaces a provider's current set
for the account, updating the rows still there and marking the ones that disappeared resolved
(``resolved_at``) rather than deleting them. The provider's own payload is kept in ``raw``
beside the normalised columns.

``cost_anomalies`` holds flagged (account, service, day) points, one row per source (our
detector, or a provider's own anomaly detection) and currency. A re-run over restated days
updates the rows in place; a point that no longer departs is removed.

Both are tenant data, so they get the same Row-Level Security, blank-tenant CHECK and grants
as ``cost_data``: the pipeline reads and writes every tenant, the reporting role reads the
tenant it set.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"
_TABLES = ("cost_recommendations", "cost_anomalies")
_TENANT_MATCH = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')"
# As migration 0003: a non-space first and last character.
_NOT_BLANK = r"tenant_id ~ '^\S(.*\S)?$'"


def upgrade() -> None:
    # No foreign key to cloud_accounts: removing an account keeps its history, as cost_data.
    op.execute(
        f"""
        CREATE TABLE cost_recommendations (
            tenant_id text NOT NULL CONSTRAINT cost_recommendations_tenant_id_not_blank
                CHECK ({_NOT_BLANK}),
            cloud_account_id uuid NOT NULL,
            provider text NOT NULL,
            source text NOT NULL,
            resource text NOT NULL,
            kind text NOT NULL,
            current text NOT NULL,
            recommended text NOT NULL,
            monthly_savings numeric NOT NULL,
            currency text NOT NULL,
            raw jsonb NOT NULL,
            first_seen timestamptz NOT NULL,
            last_seen timestamptz NOT NULL,
            resolved_at timestamptz,
            run_id text,
            PRIMARY KEY (tenant_id, cloud_account_id, provider, source, resource),
            CHECK (last_seen >= first_seen)
        )
        """
    )
    # The CLI and dashboards read a tenant's open recommendations, largest savings first.
    op.execute(
        "CREATE INDEX cost_recommendations_open_idx ON cost_recommendations "
        "(tenant_id, monthly_savings DESC) WHERE resolved_at IS NULL"
    )
    op.execute(
        f"""
        CREATE TABLE cost_anomalies (
            tenant_id text NOT NULL CONSTRAINT cost_anomalies_tenant_id_not_blank
                CHECK ({_NOT_BLANK}),
            cloud_account_id uuid NOT NULL,
            source text NOT NULL,
            service text NOT NULL,
            currency text NOT NULL,
            date date NOT NULL,
            expected numeric NOT NULL,
            actual numeric NOT NULL,
            score double precision,
            impact numeric NOT NULL,
            direction text NOT NULL CHECK (direction IN ('spike', 'drop')),
            confirmed boolean NOT NULL DEFAULT false,
            detected_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            run_id text,
            PRIMARY KEY (tenant_id, cloud_account_id, source, service, currency, date)
        )
        """
    )
    op.execute("CREATE INDEX cost_anomalies_tenant_date_idx ON cost_anomalies (tenant_id, date)")
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({_TENANT_MATCH}) WITH CHECK ({_TENANT_MATCH})"
        )
        op.execute(
            f"CREATE POLICY pipeline_all_tenants ON {table} TO {PIPELINE_ROLE} "
            "USING (true) WITH CHECK (true)"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {PIPELINE_ROLE}")
        op.execute(f"GRANT SELECT ON {table} TO {REPORTING_ROLE}")


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE {table}")
