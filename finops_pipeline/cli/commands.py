"""The ``finops`` command line: the root group. Each command group lives in its own module.

Its commands and flags are a stable interface for scripts.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import click

from finops_pipeline.cli.accounts_commands import accounts
from finops_pipeline.cli.budget_commands import budget
from finops_pipeline.cli.common import error_line, fail
from finops_pipeline.cli.costs_command import costs
from finops_pipeline.cli.db_commands import db
from finops_pipeline.cli.demo_command import demo
from finops_pipeline.cli.export_commands import export
from finops_pipeline.cli.keys_commands import keys
from finops_pipeline.cli.recommendations_command import recommendations
from finops_pipeline.cli.sync_command import sync
from finops_pipeline.cli.ui_command import ui

logger = logging.getLogger("finops_pipeline.cli")


class FinopsGroup(click.Group):
    """The one guard every command runs under: an error becomes one clear line and exit 1.

    Usage errors keep click's exit 2; ``-v`` also logs the traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.params.get("verbose"):
                logger.error("%s failed", ctx.info_name, exc_info=error)
            fail(error_line(error))


@click.group(cls=FinopsGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def main(verbose: bool) -> None:
    """Collect cloud cost data into Postgres with Dagster.

    Reads DATABASE_URL (unset: the embedded PostgreSQL under FINOPS_HOME) and ENCRYPTION_KEY.
    """
    from finops_pipeline.providers.aws.client import quiet_aws_sdk_loggers
    from finops_pipeline.security.redaction import install_redaction

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(_ours_only)
        # Dagster's own warnings (e.g. that BackfillPolicy is beta) mean nothing to a user of
        # a command; -v shows them. Matched by module, so dagster need not be imported here.
        warnings.filterwarnings("ignore", module="dagster")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    quiet_aws_sdk_loggers()
    install_redaction()


def _ours_only(record: logging.LogRecord) -> bool:
    """Without -v: no Dagster log lines below errors (e.g. "no dagster.yaml found"), and no
    per-account failure lines, which `sync` prints once each in its summary."""
    if record.name == "dagster" or record.name.startswith("dagster."):
        return record.levelno >= logging.ERROR
    return record.name != "finops_pipeline.sync.collection"


for _command in (db, sync, accounts, budget, keys, export, demo, costs, recommendations, ui):
    main.add_command(_command)
