"""Data you can trust: provider totals, AWS Organizations members, paid-request budgets.

- ``cost_provider_totals``: the provider's own ungrouped total per account, day and currency,
  stored with each loaded window in the same transaction. The reconciliation check compares
  ``cost_data``'s sums with them per account, month and currency; run alone, it shows rows
  deleted or altered since their load.
- ``cloud_accounts.management_account``: a payer whose organisation members are discovered
  (Cost Explorer LINKED_ACCOUNT values). ``payer_account_id`` links each discovered member to its
  payer; members use copies of the payer's credentials, so removing the payer removes them
  (ON DELETE CASCADE; their cost history stays). ``member_gone_at``: when discovery last missed
  the member; it is then disabled, never deleted, and enabled again if it comes back.
- ``paid_request_usage``: paid provider requests per tenant, calendar month (UTC), account and
  unit (``request`` for Cost Explorer; Azure counts ``qpu``). Written by every process that pays,
  so a budget holds across runs, processes and retries.
- ``tenant_request_budgets``: an optional monthly cap per tenant and unit.
- ``cost_data_focus``: members show their payer as BillingAccountId/Name.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"
_TENANT_MATCH = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')"
_NEW_TENANT_TABLES = ("cost_provider_totals", "paid_request_usage", "tenant_request_budgets")


def _focus_view_of_0005() -> str:
    # Migration files start with digits, so 0005 is loaded by path; its view stays the source.
    path = Path(__file__).with_name("0005_focus_view.py")
    spec = importlib.util.spec_from_file_location("finops_migration_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module._FOCUS_VIEW)


def _focus_view_with_payers() -> str:
    view = _focus_view_of_0005()
    replacements = {
        "CREATE VIEW cost_data_focus": "CREATE OR REPLACE VIEW cost_data_focus",
        'COALESCE(a.provider_account_id, c.cloud_account_id::text) AS "BillingAccountId"': (
            "COALESCE(p.provider_account_id, a.provider_account_id, c.cloud_account_id::text)"
            ' AS "BillingAccountId"'
        ),
        'a.name AS "BillingAccountName"': 'COALESCE(p.name, a.name) AS "BillingAccountName"',
        "    ON a.id = c.cloud_account_id AND a.tenant_id = c.tenant_id\n": (
            "    ON a.id = c.cloud_account_id AND a.tenant_id = c.tenant_id\n"
            "LEFT JOIN cloud_accounts AS p\n"
            "    ON p.id = a.payer_account_id AND p.tenant_id = a.tenant_id\n"
        ),
    }
    for old, new in replacements.items():
        if old not in view:
            raise RuntimeError(f"0005's cost_data_focus changed; cannot find {old!r}")
        view = view.replace(old, new)
    return view


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE cost_provider_totals (
            tenant_id text NOT NULL CHECK (btrim(tenant_id) <> ''),
            cloud_account_id uuid NOT NULL,
            provider text NOT NULL,
            date date NOT NULL,
            currency text NOT NULL,
            unblended_cost numeric NOT NULL,
            is_estimated boolean NOT NULL DEFAULT false,
            fetched_at timestamptz NOT NULL DEFAULT now(),
            run_id text,
            PRIMARY KEY (tenant_id, cloud_account_id, date, currency)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE paid_request_usage (
            tenant_id text NOT NULL CHECK (btrim(tenant_id) <> ''),
            month date NOT NULL CHECK (extract(day FROM month) = 1),
            cloud_account_id uuid NOT NULL,
            provider text NOT NULL,
            unit text NOT NULL,
            requests bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, month, cloud_account_id, unit)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE tenant_request_budgets (
            tenant_id text NOT NULL CHECK (btrim(tenant_id) <> ''),
            unit text NOT NULL,
            monthly_limit bigint NOT NULL CHECK (monthly_limit >= 0),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, unit)
        )
        """
    )
    for table in _NEW_TENANT_TABLES:
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

    op.execute(
        "ALTER TABLE cloud_accounts "
        "ADD COLUMN management_account boolean NOT NULL DEFAULT false, "
        "ADD COLUMN payer_account_id uuid REFERENCES cloud_accounts (id) ON DELETE CASCADE, "
        "ADD COLUMN member_gone_at timestamptz, "
        "ADD COLUMN members_discovered_at timestamptz, "
        "ADD CONSTRAINT cloud_accounts_payer_not_member "
        "CHECK (NOT (management_account AND payer_account_id IS NOT NULL))"
    )
    op.execute("CREATE INDEX cloud_accounts_payer_idx ON cloud_accounts (payer_account_id)")
    op.execute(
        "GRANT SELECT (management_account, payer_account_id, member_gone_at, "
        f"members_discovered_at) ON cloud_accounts TO {REPORTING_ROLE}"
    )
    op.execute(_focus_view_with_payers())


def downgrade() -> None:
    op.execute(_focus_view_of_0005().replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
    op.execute(
        "ALTER TABLE cloud_accounts DROP CONSTRAINT cloud_accounts_payer_not_member, "
        "DROP COLUMN members_discovered_at, DROP COLUMN member_gone_at, "
        "DROP COLUMN payer_account_id, DROP COLUMN management_account"
    )
    for table in reversed(_NEW_TENANT_TABLES):
        op.execute(f"DROP TABLE {table}")
