"""Day markers: which days of an account were loaded, and with how many rows.

A day with no cost has no ``cost_data`` rows, which on its own cannot be told apart from a day
that was never loaded or whose rows were lost. So the loader records one ``cost_data_days`` row
per day of every window it replaces, in the same transaction, with the number of rows it left
for that day: ``row_count = 0`` is the explicit marker of a zero-cost day. The completeness
check compares these markers with the account's synced windows and with the rows present now.

The table is tenant data, so it gets the same Row-Level Security and grants as ``cost_data``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"
_TENANT_MATCH = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE cost_data_days (
            tenant_id text NOT NULL,
            cloud_account_id uuid NOT NULL,
            date date NOT NULL,
            row_count integer NOT NULL CHECK (row_count >= 0),
            loaded_at timestamptz NOT NULL DEFAULT now(),
            run_id text,
            PRIMARY KEY (tenant_id, cloud_account_id, date)
        )
        """
    )
    op.execute("ALTER TABLE cost_data_days ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE cost_data_days FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON cost_data_days "
        f"USING ({_TENANT_MATCH}) WITH CHECK ({_TENANT_MATCH})"
    )
    op.execute(
        f"CREATE POLICY pipeline_all_tenants ON cost_data_days TO {PIPELINE_ROLE} "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON cost_data_days TO {PIPELINE_ROLE}")
    op.execute(f"GRANT SELECT ON cost_data_days TO {REPORTING_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE cost_data_days")
