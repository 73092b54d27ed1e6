"""A content digest on each day marker, so a re-load skips the days whose rows did not change.

``cost_data_days`` (0006) already holds one marker per (tenant, account, day) that the loader
replaced. ``content_digest`` adds a hash of that day's rows as the loader last wrote them. A
re-load hashes the provider's rows per day the same way and writes only the days whose digest
differs: an unchanged day costs no COPY, no delete and no dead tuple. NULL (markers written
before this revision, or by anything that does not hash) means "unknown", and such a day is
always rewritten, so the column is purely additive.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE cost_data_days ADD COLUMN content_digest text")


def downgrade() -> None:
    op.execute("ALTER TABLE cost_data_days DROP COLUMN content_digest")
