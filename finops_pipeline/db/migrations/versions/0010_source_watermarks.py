"""Source watermarks: the provider's version stamp of each loaded day, and the newest one seen.

Billing exports keep changing a day after first writing it (late rows, credits, invoice-month
crossover) without saying which days changed. GCP's export stamps every row with
``export_time``; ``max(export_time)`` per usage day is the day's *watermark*. Per account and
usage day, ``loaded_watermark`` is the stamp of the data ``cost_data`` holds, and
``observed_watermark`` the newest stamp the provider has shown. The schedule re-pulls the days
where the observed stamp is newer than the loaded one. Provider-neutral: any source with a
per-day version stamp can use it.

Tenant data, so it gets the same Row-Level Security, blank-tenant CHECK and grants as
``cost_data``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"
_TENANT_MATCH = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')"
_NOT_BLANK = r"tenant_id ~ '^\S(.*\S)?$'"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE source_watermarks (
            tenant_id text NOT NULL CONSTRAINT source_watermarks_tenant_id_not_blank
                CHECK ({_NOT_BLANK}),
            cloud_account_id uuid NOT NULL,
            usage_date date NOT NULL,
            loaded_watermark timestamptz,
            observed_watermark timestamptz NOT NULL,
            loaded_at timestamptz,
            observed_at timestamptz NOT NULL DEFAULT now(),
            run_id text,
            PRIMARY KEY (tenant_id, cloud_account_id, usage_date)
        )
        """
    )
    # The schedule reads only the days whose observed stamp moved past the loaded one.
    op.execute(
        "CREATE INDEX source_watermarks_moved_idx ON source_watermarks (cloud_account_id) "
        "WHERE loaded_watermark IS NULL OR observed_watermark > loaded_watermark"
    )
    op.execute("ALTER TABLE source_watermarks ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE source_watermarks FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON source_watermarks "
        f"USING ({_TENANT_MATCH}) WITH CHECK ({_TENANT_MATCH})"
    )
    op.execute(
        f"CREATE POLICY pipeline_all_tenants ON source_watermarks TO {PIPELINE_ROLE} "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON source_watermarks TO {PIPELINE_ROLE}")
    op.execute(f"GRANT SELECT ON source_watermarks TO {REPORTING_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE source_watermarks")
