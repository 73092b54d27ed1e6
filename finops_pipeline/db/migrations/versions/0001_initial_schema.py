"""Create cloud_accounts and cost_data.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE cloud_accounts (
            id uuid PRIMARY KEY,
            tenant_id text NOT NULL,
            name text NOT NULL,
            provider text NOT NULL CHECK (provider IN ('aws', 'azure', 'gcp')),
            provider_account_id text NOT NULL,
            credential_kind text NOT NULL,
            credentials_encrypted bytea NOT NULL,
            endpoint_url text,
            status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            last_sync_at timestamptz,
            last_sync_status text CHECK (last_sync_status IN ('success', 'failed')),
            last_sync_error text,
            last_sync_rows bigint,
            last_sync_run_id text,
            last_sync_attempt_at timestamptz,
            last_sync_range_start date,
            last_sync_range_end date,
            UNIQUE (tenant_id, provider, provider_account_id)
        )
        """
    )
    op.execute("CREATE INDEX cloud_accounts_tenant_idx ON cloud_accounts (tenant_id)")
    # One row per account and Dagster run: written by the run itself, then folded into
    # cloud_accounts.last_sync_* by the run-status sensors. Keyed so re-processing is a no-op.
    op.execute(
        """
        CREATE TABLE account_sync_runs (
            cloud_account_id uuid NOT NULL,
            run_id text NOT NULL,
            tenant_id text NOT NULL,
            status text NOT NULL CHECK (status IN ('success', 'failed')),
            rows_written bigint NOT NULL DEFAULT 0,
            rows_in_window bigint NOT NULL DEFAULT 0,
            paid_requests integer NOT NULL DEFAULT 0,
            range_start date,
            range_end date,
            error text,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (cloud_account_id, run_id)
        )
        """
    )
    # No foreign key to cloud_accounts: removing an account keeps its cost history.
    op.execute(
        """
        CREATE TABLE cost_data (
            tenant_id text NOT NULL,
            cloud_account_id uuid NOT NULL,
            date date NOT NULL,
            provider text NOT NULL,
            service text NOT NULL,
            usage_type text NOT NULL,
            unblended_cost numeric NOT NULL,
            amortized_cost numeric NOT NULL,
            net_unblended_cost numeric NOT NULL,
            usage_quantity numeric NOT NULL,
            currency text NOT NULL,
            usage_unit text,
            is_estimated boolean NOT NULL DEFAULT false,
            ingested_at timestamptz NOT NULL DEFAULT now(),
            run_id text,
            CONSTRAINT cost_data_natural_key UNIQUE
                (tenant_id, cloud_account_id, date, provider, service, usage_type)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE account_sync_runs")
    op.execute("DROP TABLE cost_data")
    op.execute("DROP TABLE cloud_accounts")
