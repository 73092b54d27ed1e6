"""``python -m finops_pipeline.cli``: the same as the ``finops`` command."""

from finops_pipeline.cli import main

main()
