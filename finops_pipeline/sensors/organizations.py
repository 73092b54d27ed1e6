"""The member-discovery sensor: management accounts' organisations become accounts.

Once a day per payer (each listing is a paid Cost Explorer request), new members are
registered, gone ones disabled; the account sensor then gives new members their partitions and
initial history, as for any new account.
"""

import datetime as dt

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.db.organizations import management_accounts
from finops_pipeline.resources.aws import AwsCostExplorerResource
from finops_pipeline.resources.credentials import CredentialDecryptor
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.organizations import DISCOVERY_INTERVAL, discover_members

_CONFIG = FinopsConfig.from_env()


@dg.sensor(
    name="aws_organization_members_sensor",
    minimum_interval_seconds=_CONFIG.sensor_interval_seconds,
    default_status=_CONFIG.sensor_default_status(),
    description=(
        "Lists each AWS management account's members (Cost Explorer LINKED_ACCOUNT values, a "
        "paid request per page) once a day: new members become accounts using the payer's "
        "credentials, members no longer listed are disabled."
    ),
)
def aws_organization_members_sensor(
    context: dg.SensorEvaluationContext,
    postgres: PostgresResource,
    credential_decryptor: CredentialDecryptor,
    aws_cost_explorer: AwsCostExplorerResource,
) -> dg.SkipReason | None:
    """Discover the members of every payer not listed in the last day."""
    now = dt.datetime.now(dt.UTC)
    with postgres.connection() as connection:
        due = management_accounts(connection, due_before=now - DISCOVERY_INTERVAL)
        if not due:
            return dg.SkipReason("no management account is due for member discovery")
        outcomes = discover_members(
            connection,
            due,
            decrypt=credential_decryptor.decrypt_credentials,
            ring=credential_decryptor.key_ring,
            lister=aws_cost_explorer,
            today=now.date(),
        )
    for outcome in outcomes:
        context.log.info(outcome.line)
    return None
