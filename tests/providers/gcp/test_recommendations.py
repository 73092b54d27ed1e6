"""Parsing GCP Recommender's cost recommendations: pure, over the REST API's own JSON.

The machine-type, idle-VM and idle-disk payloads are shaped like the ones Google's own
rightsizing tooling is tested with (``units`` a string, ``nanos`` signed like it, nanos-only
costs, ``"2592000s"``, ``$snapshot-name`` placeholders).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from finops_pipeline.insights.recommendations import (
    KIND_COMMITMENT,
    KIND_RIGHTSIZE,
    KIND_TERMINATE,
)
from finops_pipeline.providers.gcp.errors import RecommenderDataError, RecommenderSettingError
from finops_pipeline.providers.gcp.recommendations import (
    ENV_RECOMMENDER_LOCATIONS,
    RecommenderLocations,
    locations_from_env,
    monthly_savings,
    parse_pages,
    parse_recommendation,
    plan_queries,
    recommender_by_id,
    request_count,
)

PROJECT = "rightsizer-test"
MACHINE_TYPE = recommender_by_id("google.compute.instance.MachineTypeRecommender")
IDLE_VM = recommender_by_id("google.compute.instance.IdleResourceRecommender")
IDLE_DISK = recommender_by_id("google.compute.disk.IdleResourceRecommender")
COMMITMENT = recommender_by_id("google.compute.commitment.UsageCommitmentRecommender")

RESIZE: dict[str, Any] = {
    "content": {
        "operationGroups": [
            {
                "operations": [
                    {
                        "action": "test",
                        "path": "/machineType",
                        "resource": "//compute.googleapis.com/projects/rightsizer-test/zones/"
                        "us-east1-b/instances/alicja-test",
                        "resourceType": "compute.googleapis.com/Instance",
                        "valueMatcher": {
                            "matchesPattern": ".*zones/us-east1-b/machineTypes/n1-standard-4"
                        },
                    },
                    {
                        "action": "replace",
                        "path": "/machineType",
                        "resource": "//compute.googleapis.com/projects/rightsizer-test/zones/"
                        "us-east1-b/instances/alicja-test",
                        "resourceType": "compute.googleapis.com/Instance",
                        "value": "zones/us-east1-b/machineTypes/custom-2-5120",
                    },
                ]
            }
        ]
    },
    "description": "Save cost by changing machine type from n1-standard-4 to custom-2-5120.",
    "etag": '"da62b100443c341b"',
    "lastRefreshTime": "2020-07-13T06:41:17Z",
    "name": "projects/323016592286/locations/us-east1-b/recommenders/"
    "google.compute.instance.MachineTypeRecommender/recommendations/"
    "6dfd692f-14b7-499a-be95-a09fe0893911",
    "primaryImpact": {
        "category": "COST",
        "costProjection": {
            "cost": {"currencyCode": "USD", "nanos": -268972762, "units": "-73"},
            "duration": "2592000s",
        },
    },
    "recommenderSubtype": "CHANGE_MACHINE_TYPE",
    "stateInfo": {"state": "CLAIMED"},
}
STOP_VM: dict[str, Any] = {
    "content": {
        "operationGroups": [
            {
                "operations": [
                    {
                        "action": "test",
                        "path": "/status",
                        "resource": "//compute.googleapis.com/projects/rightsizer-test/zones/"
                        "us-central1-a/instances/vkovalova-instance-memory-1",
                        "resourceType": "compute.googleapis.com/Instance",
                        "value": "RUNNING",
                    },
                    {
                        "action": "replace",
                        "path": "/status",
                        "resource": "//compute.googleapis.com/projects/rightsizer-test/zones/"
                        "us-central1-a/instances/vkovalova-instance-memory-1",
                        "resourceType": "compute.googleapis.com/Instance",
                        "value": "TERMINATED",
                    },
                ]
            }
        ]
    },
    "description": "Save cost by stopping Idle VM 'vkovalova-instance-memory-1'.",
    "etag": '"9f58395697934a1a"',
    "name": "projects/323016592286/locations/us-central1-a/recommenders/"
    "google.compute.instance.IdleResourceRecommender/recommendations/"
    "63378bdf-9ffe-4ea4-b8ee-04145f2a59c9",
    "primaryImpact": {
        "category": "COST",
        "costProjection": {
            "cost": {"currencyCode": "USD", "nanos": -497242857, "units": "-5"},
            "duration": "2592000s",
        },
    },
    "recommenderSubtype": "STOP_VM",
    "stateInfo": {"state": "ACTIVE"},
}
DELETE_DISK: dict[str, Any] = {
    "associatedInsights": [
        {
            "insight": "projects/323016592286/locations/europe-west1-d/insightTypes/"
            "google.compute.disk.IdleResourceInsight/insights/620de196-ff06-4f97-ae52-648636c98c49"
        }
    ],
    "content": {
        "operationGroups": [
            {
                "operations": [
                    {
                        "action": "add",
                        "path": "/",
                        "resource": "//compute.googleapis.com/projects/rightsizer-test/global/"
                        "snapshots/$snapshot-name",
                        "resourceType": "compute.googleapis.com/Snapshot",
                        "value": {
                            "name": "$snapshot-name",
                            "source_disk": "projects/rightsizer-test/zones/europe-west1-d/disks/"
                            "krzysztofk2",
                            "storage_locations": ["europe-west1-d"],
                        },
                    },
                    {
                        "action": "remove",
                        "path": "/",
                        "resource": "//compute.googleapis.com/projects/rightsizer-test/zones/"
                        "europe-west1-d/disks/krzysztofk2",
                        "resourceType": "compute.googleapis.com/Disk",
                    },
                ]
            }
        ]
    },
    "description": "Save cost by snapshotting and then deleting idle persistent disk "
    "'krzysztofk2'.",
    "etag": '"856260fc666866a3"',
    "name": "projects/323016592286/locations/europe-west1-d/recommenders/"
    "google.compute.disk.IdleResourceRecommender/recommendations/"
    "1e32196d-fc39-4358-9c9b-cec17a85f4ea",
    "primaryImpact": {
        "category": "COST",
        "costProjection": {
            # Under a dollar: units is left out, as proto3 JSON leaves out zero fields.
            "cost": {"currencyCode": "USD", "nanos": -135483871},
            "duration": "2592000s",
        },
    },
    "recommenderSubtype": "SNAPSHOT_AND_DELETE_DISK",
    "stateInfo": {"state": "ACTIVE"},
}
BUY_COMMITMENT: dict[str, Any] = {
    "name": "projects/323016592286/locations/us-central1/recommenders/"
    "google.compute.commitment.UsageCommitmentRecommender/recommendations/aa-1",
    "description": "Save cost by purchasing a 1 year commitment.",
    "primaryImpact": {
        "category": "COST",
        "costProjection": {
            "cost": {"currencyCode": "usd", "units": "-29", "nanos": -850000000},
            "duration": "2592000s",
        },
    },
    "content": {
        "operationGroups": [
            {
                "operations": [
                    {
                        "action": "add",
                        "resourceType": "compute.googleapis.com/Commitment",
                        "resource": "//compute.googleapis.com/projects/rightsizer-test/regions/"
                        "us-central1/commitments/$commitment-name",
                        "path": "/",
                        "value": {
                            "plan": "TWELVE_MONTH",
                            "type": "GENERAL_PURPOSE_E2",
                            "resources": [
                                {"type": "VCPU", "amount": "8"},
                                {"type": "MEMORY", "amount": "32768"},
                            ],
                        },
                    }
                ]
            }
        ]
    },
    "stateInfo": {"state": "ACTIVE"},
}

US_CENTRAL1_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")


def test_a_machine_type_recommendation_is_a_rightsize_of_the_instance_with_exact_savings() -> None:
    record = parse_recommendation(RESIZE, project=PROJECT, recommender=MACHINE_TYPE)
    assert record is not None
    assert record.source == "compute_instance_machine_type" and record.kind == KIND_RIGHTSIZE
    # The instance, not the recommendation's generated name: stable across regenerations.
    assert record.resource_id == (
        "//compute.googleapis.com/projects/rightsizer-test/zones/us-east1-b/instances/alicja-test"
    )
    assert record.estimated_monthly_savings == Decimal("73.268972762")
    assert record.currency == "USD" and record.account == PROJECT
    assert record.current == "n1-standard-4, VM alicja-test (us-east1-b)"
    assert record.recommended == "custom-2-5120"
    assert record.raw["etag"] == '"da62b100443c341b"'


def test_idle_vms_and_disks_are_terminations_of_the_resource_not_the_placeholder() -> None:
    vm = parse_recommendation(STOP_VM, project=PROJECT, recommender=IDLE_VM)
    disk = parse_recommendation(DELETE_DISK, project=PROJECT, recommender=IDLE_DISK)
    assert vm is not None and disk is not None
    assert vm.kind == disk.kind == KIND_TERMINATE
    assert vm.estimated_monthly_savings == Decimal("5.497242857")
    assert vm.recommended == "stop the VM"
    assert disk.resource_id.endswith("/zones/europe-west1-d/disks/krzysztofk2")
    assert disk.estimated_monthly_savings == Decimal("0.135483871")
    assert disk.current == "idle persistent disk krzysztofk2 (europe-west1-d)"


def test_a_commitment_is_identified_by_region_plan_and_type() -> None:
    record = parse_recommendation(BUY_COMMITMENT, project=PROJECT, recommender=COMMITMENT)
    assert record is not None and record.kind == KIND_COMMITMENT
    assert record.resource_id == "commitment/us-central1/TWELVE_MONTH/GENERAL_PURPOSE_E2"
    assert record.recommended == "commit to 8 vCPUs, 32 GB memory for 1 year"
    assert record.estimated_monthly_savings == Decimal("29.85") and record.currency == "USD"
    regenerated = copy.deepcopy(BUY_COMMITMENT)
    regenerated["name"] = regenerated["name"].replace("aa-1", "bb-2")
    again = parse_recommendation(regenerated, project=PROJECT, recommender=COMMITMENT)
    assert again is not None and again.key == record.key


@pytest.mark.parametrize("state", ["DISMISSED", "SUCCEEDED", "FAILED"])
def test_only_active_and_claimed_recommendations_are_open(state: str) -> None:
    closed = copy.deepcopy(STOP_VM)
    closed["stateInfo"]["state"] = state
    assert parse_recommendation(closed, project=PROJECT, recommender=IDLE_VM) is None


def test_an_upsizing_recommendation_is_not_a_saving() -> None:
    upsize = copy.deepcopy(RESIZE)
    upsize["primaryImpact"] = {
        "category": "PERFORMANCE",
        "costProjection": {
            "cost": {"currencyCode": "USD", "units": "24", "nanos": 460100000},
            "duration": "2592000s",
        },
    }
    assert parse_recommendation(upsize, project=PROJECT, recommender=MACHINE_TYPE) is None


def test_savings_over_another_period_are_rescaled_exactly_to_30_days() -> None:
    assert monthly_savings(Decimal("-73.268972762"), Decimal(2592000)) == Decimal("73.268972762")
    # A year's projection: 365 days' savings times 30/365, to the nano.
    assert monthly_savings(Decimal("-365"), Decimal(31536000)) == Decimal("30")
    assert monthly_savings(Decimal("-100"), Decimal(31536000)) == Decimal("8.219178082")


@pytest.mark.parametrize(
    ("cost", "duration"),
    [
        ({"units": "-5", "nanos": -1}, "2592000s"),  # no currency
        ({"currencyCode": "USD", "units": "-5.5"}, "2592000s"),  # units not whole
        ({"currencyCode": "USD", "units": "-5", "nanos": 300}, "2592000s"),  # signs disagree
        ({"currencyCode": "USD", "units": "-5"}, "0s"),
        ({"currencyCode": "USD", "units": "-5"}, "thirty days"),
        ({"currencyCode": "USD", "units": "-5"}, None),
    ],
)
def test_a_malformed_cost_is_a_typed_data_error(cost: dict[str, Any], duration: Any) -> None:
    broken = copy.deepcopy(STOP_VM)
    broken["primaryImpact"]["costProjection"] = {"cost": cost, "duration": duration}
    with pytest.raises(RecommenderDataError, match="nothing was stored"):
        parse_recommendation(broken, project=PROJECT, recommender=IDLE_VM)


def test_a_recommendation_without_a_resource_is_a_typed_data_error() -> None:
    broken = copy.deepcopy(STOP_VM)
    broken["content"] = {"operationGroups": []}
    with pytest.raises(RecommenderDataError, match="no resource"):
        parse_pages([{"recommendations": [broken]}], project=PROJECT, recommender=IDLE_VM)


def test_pages_are_parsed_in_order_and_empty_pages_are_fine() -> None:
    records = parse_pages(
        [{"recommendations": [STOP_VM]}, {}, {"recommendations": [copy.deepcopy(STOP_VM)]}],
        project=PROJECT,
        recommender=IDLE_VM,
    )
    assert len(records) == 2 and records[0].key == records[1].key


def test_four_zones_of_one_region_make_18_requests_per_project() -> None:
    locations = RecommenderLocations.parse(US_CENTRAL1_ZONES)
    assert locations.regions == ("us-central1",)
    queries = plan_queries("shop-prod-1234", locations)
    assert request_count(locations) == len(queries) == 3 * 4 + 4 + 2
    parents = {query.parent for query in queries}
    assert (
        "projects/shop-prod-1234/locations/us-central1-f/recommenders/"
        "google.compute.disk.IdleResourceRecommender" in parents
    )
    assert (
        "projects/shop-prod-1234/locations/global/recommenders/"
        "google.compute.image.IdleResourceRecommender" in parents
    )
    assert not any("locations/-/" in parent for parent in parents)


def test_locations_discovered_from_the_export_are_the_project_s_zones_and_regions() -> None:
    rows = [
        {"region": "europe-west1", "zone": "europe-west1-b"},
        {"region": "europe-west1", "zone": None},
        {"region": "us-east1", "zone": None},
        {"region": None, "zone": "asia-south1-a"},  # a zone names its region too
        {"region": None, "zone": None},  # global usage: nothing to add
        {"region": "US", "zone": None},  # a multi-region is no Recommender location
        {"region": "global", "zone": ""},
    ]
    locations = RecommenderLocations.from_export_rows(rows)
    assert locations.zones == ("asia-south1-a", "europe-west1-b")
    assert locations.regions == ("asia-south1", "europe-west1", "us-east1")
    # 3 zonal x 2 + 4 regional x 3 + 2 global
    assert request_count(locations) == 20
    one_zone = RecommenderLocations.from_export_rows(
        [{"region": "europe-west1", "zone": "europe-west1-b"}]
    )
    assert request_count(one_zone) == 3 + 4 + 2
    nothing = RecommenderLocations.from_export_rows([])
    assert request_count(nothing) == 2
    assert nothing.describe() == "global only"
    assert one_zone.describe() == "europe-west1-b, europe-west1 and global"


def test_locations_come_from_the_environment_and_are_checked() -> None:
    # Unset or auto: each project's own locations, from its billing export.
    assert locations_from_env({}) == ()
    assert locations_from_env({ENV_RECOMMENDER_LOCATIONS: " Auto "}) == ()
    env = {ENV_RECOMMENDER_LOCATIONS: "europe-west1-b, europe-west1-c,us-east1,global"}
    parsed = RecommenderLocations.parse(locations_from_env(env))
    assert parsed.zones == ("europe-west1-b", "europe-west1-c")
    assert parsed.regions == ("europe-west1", "us-east1")
    # 3 zonal x 2 + 4 regional x 2 + 2 global
    assert request_count(parsed) == 16
    with pytest.raises(RecommenderSettingError, match=ENV_RECOMMENDER_LOCATIONS):
        locations_from_env({ENV_RECOMMENDER_LOCATIONS: "us-central1-a,Frankfurt!"})
    with pytest.raises(RecommenderSettingError, match="no zone or region"):
        RecommenderLocations.parse(["global"])
