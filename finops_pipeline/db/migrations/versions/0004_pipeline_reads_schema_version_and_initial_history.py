"""The pipeline role reads the schema version; accounts remember their initial history request.

- ``finops_pipeline`` gets ``SELECT`` on the version table. Every ``finops`` command and the
  code location check the schema version before anything else, so without it a login set up as
  the README says (``GRANT finops_pipeline TO finops_app``) failed every command with
  ``permission denied for table finops_schema_version``.
- ``cloud_accounts.initial_history_requested_at``: when the account sensor requested the
  account's initial history (or found it loaded already). The database decides whether an
  account still needs its history, not the Dagster instance's run keys, which a temporary
  ``dagster dev`` instance forgets on every start.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"


def _version_table() -> str:
    # The table finops_pipeline.db.migrate configured ("finops_schema_version"); alembic
    # creates it before the first migration runs, so it exists here.
    return op.get_context().version_table


def upgrade() -> None:
    op.execute(f"GRANT SELECT ON {_version_table()} TO {PIPELINE_ROLE}")
    op.execute("ALTER TABLE cloud_accounts ADD COLUMN initial_history_requested_at timestamptz")
    op.execute(f"GRANT SELECT (initial_history_requested_at) ON cloud_accounts TO {REPORTING_ROLE}")


def downgrade() -> None:
    op.execute(
        f"REVOKE SELECT (initial_history_requested_at) ON cloud_accounts FROM {REPORTING_ROLE}"
    )
    op.execute("ALTER TABLE cloud_accounts DROP COLUMN initial_history_requested_at")
    op.execute(f"REVOKE SELECT ON {_version_table()} FROM {PIPELINE_ROLE}")
