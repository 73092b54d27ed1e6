"""Refuse blank tenant ids, and tenant ids with surrounding whitespace, in every table.

Row-Level Security reads an empty ``app.tenant_id`` as "no tenant", so a row stored under a
blank tenant could never be seen by a reporting session. ``check_tenant_id`` refuses such ids
in Python; these CHECKs make sure no other path (raw SQL, a future command) stores one.

The constraints are added ``NOT VALID`` and validated only when the table holds no offending
row, so an upgrade never fails or rewrites old data: rows stored under a blank tenant before
this migration stay as they were, a WARNING names the table, and new writes are checked either
way.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = ("tenants", "cloud_accounts", "cost_data", "account_sync_runs")
# A non-space first and last character: rejects '', '   ', ' acme' and 'acme '.
_NOT_BLANK = r"tenant_id ~ '^\S(.*\S)?$'"


def _constraint(table: str) -> str:
    return f"{table}_tenant_id_not_blank"


def upgrade() -> None:
    for table in _TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {_constraint(table)} "
            f"CHECK ({_NOT_BLANK}) NOT VALID"
        )
        op.execute(
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM {table} WHERE NOT ({_NOT_BLANK})) THEN
                    RAISE WARNING '{table} holds rows with a blank tenant_id; they were kept '
                        'as they were, and new rows are checked';
                ELSE
                    ALTER TABLE {table} VALIDATE CONSTRAINT {_constraint(table)};
                END IF;
            END
            $$
            """
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_constraint(table)}")
