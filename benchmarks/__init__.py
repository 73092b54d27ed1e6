"""Benchmarks for finops-pipeline: ``python -m benchmarks [--size tiny|full]``.

Every figure is reported against a baseline measured in the same run, because these machines
are noisy: the loader against raw COPY and pandas ``to_sql``, range runs against one run per
day, a K×D backfill against K single-day runs.
"""
