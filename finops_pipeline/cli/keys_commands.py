"""``finops keys``: the encryption keys of stored credentials."""

from __future__ import annotations

import json
import sys

import click

from finops_pipeline.cli.common import OUTPUT_OPTION, database


@click.group("keys")
def keys() -> None:
    """Encryption keys for stored credentials."""


@keys.command("generate")
@click.option("--local", is_flag=True, help="Write the embedded default's local key file instead.")
def keys_generate(local: bool) -> None:
    """Print a new random 256-bit key (64 hex characters) for ENCRYPTION_KEY."""
    from finops_pipeline.security.ciphertext import generate_key
    from finops_pipeline.security.keys import ensure_local_key

    if local:
        click.echo(str(ensure_local_key()))
        return
    click.echo(generate_key())


@keys.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--dry-run", is_flag=True, help="Count what would change; write nothing.")
@OUTPUT_OPTION
def keys_rotate(batch_size: int, dry_run: bool, output: str) -> None:
    """Re-encrypt every credential under ENCRYPTION_KEY (old keys in ENCRYPTION_KEYS_PREVIOUS)."""
    from finops_pipeline.security.keys import load_key_ring
    from finops_pipeline.security.rotation import rotate_credentials

    ring = load_key_ring()
    with database() as connection:
        report = rotate_credentials(connection, ring, batch_size=batch_size, dry_run=dry_run)
    if output == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        prefix = "would be " if dry_run else ""
        click.echo(f"{prefix}re-encrypted:    {report.reencrypted}")
        click.echo(f"already current: {report.already_current}")
        click.echo(f"failed:          {report.failed}")
        for failure in report.failures:
            click.echo(f"  {failure.account_id}: {failure.error_type}: {failure.message}", err=True)
    if not report.ok:
        sys.exit(1)
