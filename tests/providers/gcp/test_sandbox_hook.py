"""The registry's GCP hook serves sandbox exports in any process (a Dagster run worker too)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from finops_pipeline.providers.gcp.sandbox.demo import demo_credentials
from finops_pipeline.security.credentials import serialize_credentials

# A fresh process: its own double, seeded the same way, trusting the key it is shown.
_COLLECT_IN_ANOTHER_PROCESS = """
import datetime as dt, sys
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.gcp.client import BillingExportClient
from finops_pipeline.providers.gcp.collector import collect_billing_export
from finops_pipeline.providers.gcp.sandbox.hook import DEMO_EXPORT
from finops_pipeline.security.credentials import deserialize_credentials
from finops_pipeline.sync.ranges import DateRange

credentials = deserialize_credentials(sys.stdin.buffer.read())
client = BillingExportClient.open(
    credentials.key, credentials.billing_export(), client_hook=provider_spec("gcp").client_hook
)
day = dt.date.fromisoformat(sys.argv[1])
costs = collect_billing_export(
    client, project_ids=[p for p, _ in DEMO_EXPORT.projects], window=DateRange(day, day),
    as_of=day,
)
print(sum(len(parsed.frame) for parsed in costs.by_project.values()), costs.bytes_billed)
print(sorted(m for m in sys.modules if m.endswith(".sandbox.hook")))
"""


def test_a_sandbox_key_made_in_one_process_collects_in_another() -> None:
    payload = serialize_credentials(demo_credentials())
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)
    result = subprocess.run(
        [sys.executable, "-c", _COLLECT_IN_ANOTHER_PROCESS, day.isoformat()],
        input=payload,
        capture_output=True,
        check=True,
        timeout=300,
    )
    rows, billed = result.stdout.decode().splitlines()[0].split()
    assert int(rows) > 0 and int(billed) >= 10 * 1024 * 1024


def test_the_production_bigquery_client_does_not_import_the_sandbox() -> None:
    code = (
        "import sys\n"
        "from finops_pipeline.providers import provider_spec\n"
        "hook = provider_spec('gcp').client_hook\n"
        "hook(object(), 'https://bigquery.googleapis.com')\n"
        "hook(object(), None)\n"
        "print(sorted(m for m in sys.modules if '.gcp.sandbox' in m))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
