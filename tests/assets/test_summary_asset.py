"""cost_summary through real Dagster materialisation: the chart, the movers, per tenant."""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import re
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from PIL import Image

from finops_pipeline.assets.anomalies import cost_anomalies
from finops_pipeline.assets.summary import cost_summary
from finops_pipeline.constants import TENANTS_PARTITIONS_NAME
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sensors.tenants import tenants_sensor
from tests.assets.test_anomalies_asset import EC2_SPIKY, LOOKBACK, QUIET, RUN_CONFIG
from tests.cost_rows import add_account, load_sandbox

pytestmark = pytest.mark.integration

START, END = dt.date(2025, 8, 1), dt.date(2025, 11, 8)
DATA_URI = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def test_each_tenant_gets_a_chart_with_its_anomalies_and_its_movers(
    database_url: str,
    connection: psycopg.Connection,
    key_ring: KeyRing,
    instance: dg.DagsterInstance,
) -> None:
    for number, tenant in ((EC2_SPIKY, "acme"), (QUIET, "globex")):
        account = add_account(connection, key_ring, tenant, number)
        load_sandbox(connection, tenant, account, number, START, END)
    resources = {"postgres": PostgresResource(database_url=database_url)}

    # The tenant sensor adds one partition per tenant.
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = tenants_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(TENANTS_PARTITIONS_NAME, list(request.partition_keys))
    assert instance.get_dynamic_partitions(TENANTS_PARTITIONS_NAME) == ["acme", "globex"]

    config = {"ops": {"cost_anomalies": {"config": {"lookback_days": LOOKBACK - 22}}}}
    assert RUN_CONFIG  # the same asset and config shape as the anomaly tests
    dg.materialize([cost_anomalies], instance=instance, resources=resources, run_config=config)
    summaries = {}
    for tenant in ("acme", "globex"):
        run = dg.materialize(
            [cost_anomalies, cost_summary],
            selection=[cost_summary],
            partition_key=tenant,
            instance=instance,
            resources=resources,
        )
        assert run.success
        summaries[tenant] = run.asset_materializations_for_node("cost_summary")[0].metadata

    for tenant, metadata in summaries.items():
        markdown = metadata["summary"].value
        assert isinstance(markdown, str)
        match = DATA_URI.search(markdown)
        assert match, f"{tenant}: no PNG in the markdown"
        png = base64.b64decode(match.group(1))
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert 10_000 < len(png) < 200_000 and metadata["chart_bytes"].value == len(png)
        image = Image.open(io.BytesIO(png))
        image.verify()
        assert image.size == (800, 400)
        assert "Biggest movers" in markdown and "| service |" in markdown
        assert len(metadata["movers"].value.records) == 8  # type: ignore[attr-defined]
        assert metadata["period"].value == f"{END - dt.timedelta(days=55)} to {END}"
        if os.environ.get("FINOPS_KEEP_CHARTS"):
            Path(os.environ["FINOPS_KEEP_CHARTS"], f"{tenant}.png").write_bytes(png)

    # Acme's EC2 spike (25-28 Oct) is in its chart's period and in its anomaly table.
    assert summaries["acme"]["anomalies"].value == 4
    assert "| 2025-10-25 | Amazon Elastic Compute Cloud - Compute | spike |" in (
        summaries["acme"]["summary"].value
    )
    assert summaries["globex"]["anomalies"].value == 0
    assert "No anomalies in this period" in summaries["globex"]["summary"].value
