"""``python -m finops_pipeline.cli``: the ``finops`` command without its console script."""

from finops_pipeline.cli.commands import main

if __name__ == "__main__":
    main()
