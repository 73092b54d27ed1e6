"""The ``finops`` command: click commands, the in-process runner and the demo."""

from finops_pipeline.cli.commands import main

__all__ = ["main"]
