"""GCP Recommender's ``recommendations.list`` for sandbox projects, in the REST API's JSON.

Pure request-in, response-out logic; :mod:`.server` routes ``GET /v1/projects/{project}/
locations/{location}/recommenders/{recommender}/recommendations`` here after checking the
caller's token, the API's enablement and the caller's grant. Every project gets a
deterministic set from its id (so every process computes the same answer), in ``us-central1``
and its zones a, b, c and f, where the sandbox billing export shows every project's usage:

* VM sizing (``CHANGE_MACHINE_TYPE``) in zones a and b, one of them CLAIMED; one upsizing
  recommendation of category PERFORMANCE, which costs more and is not a saving;
* an idle VM in zone c that is only there on even pull generations, so a later refresh
  resolves it (and the one after reopens it);
* idle persistent disks in zones a and f, several (more than a page) for some projects;
* a DISMISSED idle disk, which the state filter leaves out;
* an unused regional address, a committed use discount purchase and, for some projects, an
  idle Cloud SQL instance in ``us-central1``; an unused image (``global``).

Money is ``google.type.Money`` (units as a string, nanos with the same sign, negative for
savings) over ``"2592000s"``. The pull generation follows the AWS sandbox's (the demo advances
it), as the Azure sandbox's does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from finops_pipeline.providers.gcp.recommendations import (
    COST_RECOMMENDERS,
    GLOBAL,
    REGION,
    ZONE,
    CostRecommender,
)
from finops_pipeline.providers.sandbox_draws import hex_id, unit, uuid_id

DEFAULT_PAGE_SIZE = 3
CURRENCY = "USD"
MONTH = "2592000s"
DEFAULT_SEED = 20261201
#: Locations that exist in the sandbox; anything else is NOT_FOUND, as a made-up zone is.
SANDBOX_ZONES = (
    "us-central1-a",
    "us-central1-b",
    "us-central1-c",
    "us-central1-f",
    "us-east1-b",
    "us-east1-c",
    "us-east1-d",
    "europe-west1-b",
    "europe-west1-c",
    "europe-west1-d",
)
SANDBOX_REGIONS = ("us-central1", "us-east1", "europe-west1")
#: On-demand price per 30 days (USD), for the sizes the sandbox uses.
MONTHLY_PRICE = {
    "n2-standard-8": Decimal("283.5360"),
    "n2-standard-4": Decimal("141.7680"),
    "e2-standard-4": Decimal("97.8406"),
    "e2-standard-2": Decimal("48.9203"),
    "e2-medium": Decimal("24.4601"),
    "n1-standard-4": Decimal("138.6960"),
    "custom-2-5120": Decimal("65.4272"),
}
_BY_ID = {recommender.recommender_id: recommender for recommender in COST_RECOMMENDERS}
_STATE_TERM = re.compile(r"\s*(?:stateInfo|state_info)\.state\s*=\s*\"?([A-Z_]+)\"?\s*")


class RecommenderApiError(Exception):
    """An error the API answers with: HTTP status, canonical status, message and, for some,
    the ``google.rpc.ErrorInfo`` reason, domain and metadata."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        reason: str | None = None,
        domain: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = metadata or {}


def money(amount: Decimal) -> dict[str, Any]:
    """``google.type.Money`` JSON: int64 units as a string, nanos with the same sign; fields
    at their default are left out, as the API's JSON does."""
    amount = amount.quantize(Decimal("0.000000001"), rounding=ROUND_HALF_EVEN)
    units = int(amount)  # toward zero, so nanos keeps the sign
    nanos = int((amount - units).scaleb(9))
    value: dict[str, Any] = {"currencyCode": CURRENCY}
    if units:
        value["units"] = str(units)
    if nanos:
        value["nanos"] = nanos
    return value


def project_number(project: str) -> str:
    return str(100000000000 + int(hex_id(10, "number", project), 16) % 900000000000)


@dataclass(frozen=True)
class _Item:
    """One recommendation before it is dressed as JSON."""

    recommender: str
    location: str
    key: str
    payload: dict[str, Any]


class RecommenderSandbox:
    """Deterministic cost recommendations for any project, served a page at a time."""

    def __init__(self, *, seed: int = DEFAULT_SEED, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.seed = seed
        self.page_size = page_size

    # --- the catalogue -------------------------------------------------------------------

    def recommendations(
        self, project: str, *, generation: int, today: dt.date | None = None
    ) -> list[_Item]:
        """Every recommendation of the project at this pull generation, any state."""
        today = today or dt.datetime.now(dt.UTC).date()
        items: list[_Item] = []
        number = project_number(project)
        seed = self.seed

        def add(
            recommender_id: str,
            location: str,
            key: str,
            *,
            subtype: str,
            description: str,
            cost: Decimal,
            operations: list[dict[str, Any]],
            state: str = "ACTIVE",
            category: str = "COST",
            priority: str = "P4",
            overview: dict[str, Any] | None = None,
            insight_type: str | None = None,
        ) -> None:
            payload: dict[str, Any] = {
                "name": (
                    f"projects/{number}/locations/{location}/recommenders/{recommender_id}/"
                    f"recommendations/{uuid_id(seed, project, key, generation)}"
                ),
                "description": description,
                "recommenderSubtype": subtype,
                "lastRefreshTime": f"{today.isoformat()}T06:00:00Z",
                "primaryImpact": {
                    "category": category,
                    "costProjection": {"cost": money(cost), "duration": MONTH},
                },
                "priority": priority,
                "content": {"operationGroups": [{"operations": operations}]},
                "stateInfo": {"state": state},
                "etag": f'"{hex_id(16, seed, project, key, generation, "etag")}"',
                "targetResources": [operations[-1]["resource"]]
                if not operations[-1]["resource"].count("$")
                else [],
            }
            if overview:
                payload["content"]["overview"] = overview
            if insight_type:
                payload["associatedInsights"] = [
                    {
                        "insight": f"projects/{number}/locations/{location}/insightTypes/"
                        f"{insight_type}/insights/{uuid_id(seed, project, key, 'insight')}"
                    }
                ]
            items.append(_Item(recommender_id, location, key, payload))

        def instance(zone: str, name: str) -> str:
            return f"//compute.googleapis.com/projects/{project}/zones/{zone}/instances/{name}"

        def resize(zone: str, name: str, current: str, target: str, *, state: str) -> None:
            resource = instance(zone, name)
            add(
                "google.compute.instance.MachineTypeRecommender",
                zone,
                f"resize/{name}",
                subtype="CHANGE_MACHINE_TYPE",
                description=f"Save cost by changing machine type from {current} to {target}.",
                cost=MONTHLY_PRICE[target] - MONTHLY_PRICE[current],
                state=state,
                operations=[
                    {
                        "action": "test",
                        "resourceType": "compute.googleapis.com/Instance",
                        "resource": resource,
                        "path": "/machineType",
                        "valueMatcher": {
                            "matchesPattern": f".*zones/{zone}/machineTypes/{current}"
                        },
                    },
                    {
                        "action": "replace",
                        "resourceType": "compute.googleapis.com/Instance",
                        "resource": resource,
                        "path": "/machineType",
                        "value": f"zones/{zone}/machineTypes/{target}",
                    },
                ],
                overview={"currentMachineType": current, "recommendedMachineType": target},
            )

        short = project.split("-")[-1][:6]
        resize("us-central1-a", f"{short}-app-1", "n2-standard-8", "n2-standard-4", state="ACTIVE")
        resize("us-central1-b", f"{short}-api-2", "e2-standard-4", "e2-standard-2", state="CLAIMED")
        # Sizing also recommends *larger* machines: PERFORMANCE, costing more.
        upsized = instance("us-central1-b", f"{short}-db-3")
        add(
            "google.compute.instance.MachineTypeRecommender",
            "us-central1-b",
            f"upsize/{short}-db-3",
            subtype="CHANGE_MACHINE_TYPE",
            description="Improve performance by changing machine type from e2-medium to "
            "e2-standard-2.",
            cost=MONTHLY_PRICE["e2-standard-2"] - MONTHLY_PRICE["e2-medium"],
            category="PERFORMANCE",
            priority="P3",
            operations=[
                {
                    "action": "replace",
                    "resourceType": "compute.googleapis.com/Instance",
                    "resource": upsized,
                    "path": "/machineType",
                    "value": "zones/us-central1-b/machineTypes/e2-standard-2",
                }
            ],
        )
        if generation % 2 == 0:
            # Stopped by its owner after the first refresh: gone in odd generations.
            idle = f"{short}-batch-7"
            resource = instance("us-central1-c", idle)
            add(
                "google.compute.instance.IdleResourceRecommender",
                "us-central1-c",
                f"idle-vm/{idle}",
                subtype="STOP_VM",
                description=f"Save cost by stopping Idle VM '{idle}'.",
                cost=-MONTHLY_PRICE["e2-standard-4"],
                insight_type="google.compute.instance.IdleResourceInsight",
                operations=[
                    {
                        "action": "test",
                        "resourceType": "compute.googleapis.com/Instance",
                        "resource": resource,
                        "path": "/status",
                        "value": "RUNNING",
                    },
                    {
                        "action": "replace",
                        "resourceType": "compute.googleapis.com/Instance",
                        "resource": resource,
                        "path": "/status",
                        "value": "TERMINATED",
                    },
                ],
            )
        # Some projects have more idle disks in one zone than a page holds.
        disks = 2 + int(unit(seed, project, "disks") * 12)
        for index in range(disks + 1):
            zone = "us-central1-a" if index % 4 else "us-central1-f"
            name = f"{short}-pd-{index:02d}"
            size_gb = 50 * (1 + int(unit(seed, project, name) * 10))
            disk = f"//compute.googleapis.com/projects/{project}/zones/{zone}/disks/{name}"
            add(
                "google.compute.disk.IdleResourceRecommender",
                zone,
                f"disk/{name}",
                subtype="SNAPSHOT_AND_DELETE_DISK",
                description=f"Save cost by snapshotting and then deleting idle persistent "
                f"disk '{name}'.",
                # pd-balanced: $0.10 per GB-month; the snapshot kept costs about a quarter.
                cost=-(Decimal(size_gb) * Decimal("0.075")),
                # The last one was dismissed by its owner: the state filter leaves it out.
                state="DISMISSED" if index == disks else "ACTIVE",
                insight_type="google.compute.disk.IdleResourceInsight",
                operations=[
                    {
                        "action": "add",
                        "resourceType": "compute.googleapis.com/Snapshot",
                        "resource": f"//compute.googleapis.com/projects/{project}/global/"
                        "snapshots/$snapshot-name",
                        "path": "/",
                        "value": {
                            "name": "$snapshot-name",
                            "source_disk": f"projects/{project}/zones/{zone}/disks/{name}",
                            "storage_locations": [zone.rsplit("-", 1)[0]],
                        },
                    },
                    {
                        "action": "remove",
                        "resourceType": "compute.googleapis.com/Disk",
                        "resource": disk,
                        "path": "/",
                    },
                ],
            )
        address = f"{short}-ip-legacy"
        add(
            "google.compute.address.IdleResourceRecommender",
            "us-central1",
            f"address/{address}",
            subtype="DELETE_ADDRESS",
            description=f"Save cost by deleting idle address '{address}'.",
            cost=Decimal("-7.3"),
            operations=[
                {
                    "action": "remove",
                    "resourceType": "compute.googleapis.com/Address",
                    "resource": f"//compute.googleapis.com/projects/{project}/regions/"
                    f"us-central1/addresses/{address}",
                    "path": "/",
                }
            ],
        )
        vcpus = 4 * (1 + int(unit(seed, project, "cud") * 4))
        add(
            "google.compute.commitment.UsageCommitmentRecommender",
            "us-central1",
            "commitment/e2",
            subtype="COMMITMENT_ONE_YEAR",
            description=f"Save cost by purchasing a 1 year commitment for {vcpus} vCPUs and "
            f"{vcpus * 4} GB of memory.",
            # E2 1-year resource-based CUD: 37% off on-demand.
            cost=-(Decimal(vcpus) * Decimal("16.53") * Decimal("0.37")),
            priority="P3",
            operations=[
                {
                    "action": "add",
                    "resourceType": "compute.googleapis.com/Commitment",
                    "resource": f"//compute.googleapis.com/projects/{project}/regions/"
                    "us-central1/commitments/$commitment-name",
                    "path": "/",
                    "value": {
                        "name": "$commitment-name",
                        "plan": "TWELVE_MONTH",
                        "type": "GENERAL_PURPOSE_E2",
                        "resources": [
                            {"type": "VCPU", "amount": str(vcpus)},
                            {"type": "MEMORY", "amount": str(vcpus * 4 * 1024)},
                        ],
                    },
                }
            ],
        )
        if unit(seed, project, "sql") < 0.5:
            sql = f"{short}-pg-reporting"
            add(
                "google.cloudsql.instance.IdleRecommender",
                "us-central1",
                f"sql/{sql}",
                subtype="STOP",
                description=f"Save cost by stopping idle Cloud SQL instance '{sql}'.",
                cost=Decimal("-51.1"),
                operations=[
                    {
                        "action": "replace",
                        "resourceType": "sqladmin.googleapis.com/Instance",
                        "resource": f"//sqladmin.googleapis.com/projects/{project}/instances/{sql}",
                        "path": "/settings/activationPolicy",
                        "value": "NEVER",
                    }
                ],
            )
        image = f"{short}-golden-2023"
        add(
            "google.compute.image.IdleResourceRecommender",
            GLOBAL,
            f"image/{image}",
            subtype="DELETE_IMAGE",
            description=f"Save cost by deleting idle image '{image}'.",
            cost=Decimal("-1.7"),
            operations=[
                {
                    "action": "remove",
                    "resourceType": "compute.googleapis.com/Image",
                    "resource": f"//compute.googleapis.com/projects/{project}/global/images/{image}",
                    "path": "/",
                }
            ],
        )
        return items

    # --- recommendations.list ------------------------------------------------------------

    def list_recommendations(
        self,
        project: str,
        location: str,
        recommender_id: str,
        *,
        query: dict[str, str],
        generation: int,
    ) -> dict[str, Any]:
        """One page of ``recommendations.list``.

        Raises:
            RecommenderApiError: an unknown recommender or location, a bad filter or token.
        """
        recommender = _BY_ID.get(recommender_id)
        if recommender is None:
            raise RecommenderApiError(
                404, "NOT_FOUND", f"Recommender {recommender_id} was not found."
            )
        if location != GLOBAL and location not in SANDBOX_ZONES + SANDBOX_REGIONS:
            raise RecommenderApiError(404, "NOT_FOUND", f"Location {location} was not found.")
        states = _parse_filter(query.get("filter", ""))
        items = [
            item.payload
            for item in self.recommendations(project, generation=generation)
            if item.recommender == recommender_id
            and item.location == location
            and _serves(recommender, location)
            and (states is None or item.payload["stateInfo"]["state"] in states)
        ]
        size = int(query.get("pageSize") or 0)
        size = self.page_size if size <= 0 else min(size, self.page_size)
        fingerprint = hex_id(16, project, location, recommender_id, query.get("filter", ""))
        offset = _offset(query.get("pageToken"), fingerprint, generation, len(items))
        page: dict[str, Any] = {}
        if items[offset : offset + size]:
            page["recommendations"] = items[offset : offset + size]
        if offset + size < len(items):
            token = {"o": offset + size, "f": fingerprint, "g": generation}
            page["nextPageToken"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
        return page

    def open_cost_count(self, project: str, locations: Iterable[str], *, generation: int) -> int:
        """How many ACTIVE or CLAIMED COST recommendations the locations hold (for checks)."""
        wanted = set(locations)
        return sum(
            1
            for item in self.recommendations(project, generation=generation)
            if item.location in wanted
            and item.payload["stateInfo"]["state"] in {"ACTIVE", "CLAIMED"}
            and item.payload["primaryImpact"]["category"] == "COST"
        )


def _serves(recommender: CostRecommender, location: str) -> bool:
    if location == GLOBAL:
        return GLOBAL in recommender.scopes
    kind = ZONE if location in SANDBOX_ZONES else REGION
    return kind in recommender.scopes


def _parse_filter(text: str) -> set[str] | None:
    """The states of a ``stateInfo.state = X OR ...`` filter; None for no filter."""
    if not text.strip():
        return None
    states = set()
    for term in text.split(" OR "):
        match = _STATE_TERM.fullmatch(term)
        if match is None:
            raise RecommenderApiError(
                400, "INVALID_ARGUMENT", "The sandbox supports stateInfo.state filters only."
            )
        states.add(match.group(1))
    return states


def _offset(token: str | None, fingerprint: str, generation: int, total: int) -> int:
    if not token:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(payload["o"])
        valid = payload["f"] == fingerprint and int(payload["g"]) == generation
    except (binascii.Error, ValueError, KeyError, TypeError):
        valid, offset = False, 0
    if not valid or not 0 < offset < total:
        raise RecommenderApiError(400, "INVALID_ARGUMENT", "Invalid page token.")
    return offset
