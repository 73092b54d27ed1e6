"""The code location loads without touching the network or a database."""

from __future__ import annotations

import dagster as dg

from finops_pipeline.definitions import defs
from finops_pipeline.resources import CredentialDecryptor, PostgresResource


def test_definitions_load_and_validate() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert "cost_data" in keys
    cost_data = graph.get(dg.AssetKey("cost_data"))
    partitions = cost_data.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    dimensions = {d.name: d.partitions_def for d in partitions.partitions_defs}
    assert set(dimensions) == {"account", "date"}
    assert isinstance(dimensions["account"], dg.DynamicPartitionsDefinition)
    assert dimensions["account"].name == "cloud_accounts"
    assert isinstance(dimensions["date"], dg.DailyPartitionsDefinition)
    assert (dimensions["date"].timezone, dimensions["date"].fmt) == ("UTC", "%Y-%m-%d")
    assert cost_data.backfill_policy == dg.BackfillPolicy.single_run()


def test_secret_bearing_resource_fields_stay_out_of_repr() -> None:
    decryptor = CredentialDecryptor(encryption_key="a" * 64, previous_keys="b" * 64)
    postgres = PostgresResource(database_url="postgresql://u:hunter2-password@db/x")
    assert "a" * 64 not in repr(decryptor) and "b" * 64 not in repr(decryptor)
    assert "hunter2" not in repr(postgres)
