"""GCP Recommender's cost recommendations, as normalised records (pure: no client, no I/O).

Which recommenders are asked, and where
---------------------------------------
Each recommender lists recommendations per *location*, and each has its own kind of location:
VM sizing, idle VMs and idle persistent disks are zonal; idle IP addresses, committed use
discounts and Cloud SQL are regional; idle images are global (idle *global* addresses too).
Google documents no wildcard location for ``recommendations.list`` (``locations/-`` is not in
the API reference, and what it does is unspecified), so every location is asked explicitly:
:data:`COST_RECOMMENDERS` times the locations of their kind.

By default the locations are **discovered per project from its billing export**: the distinct
``location.zone`` and ``location.region`` of its usage in the last
:data:`LOCATION_LOOKBACK_DAYS` days (:func:`RecommenderLocations.from_export_rows`). A project
is asked where it runs, wherever that is, and nowhere else: a project in one zone takes
3 zonal + 4 regional + 2 global = 9 requests, one in ``us-central1``'s four zones
3 x 4 + 4 + 2 = **18** (:func:`request_count`; more only when a list has more than one page),
and one without zonal or regional usage only the 2 global lists. The discovery is one small
BigQuery query per project and refresh, billed BigQuery's 10 MiB minimum for most exports.
``FINOPS_GCP_RECOMMENDER_LOCATIONS`` (zones and regions, comma-separated; the regions of the
listed zones and ``global`` are added) replaces the discovery with a fixed list for every
project; ``auto``, or unset, discovers. Recommender requests are free; they are counted, not
billed.

Only open recommendations count: ``ACTIVE`` and ``CLAIMED`` (claimed means someone intends to
apply it; the savings are still to be had). The filter is sent to the API
(:data:`OPEN_STATES_FILTER`) and checked again here.

Money
-----
``primaryImpact.costProjection.cost`` is a ``google.type.Money``: ``units`` (int64, a string
in JSON) plus ``nanos`` (billionths, same sign), negative for savings, over
``costProjection.duration`` (``"2592000s"``, 30 days, for the cost recommenders). Monthly
savings are ``-(units + nanos / 10^9)`` scaled exactly to 30 days; a different duration is
rescaled with :class:`~decimal.Decimal` arithmetic and rounded to the nano, Money's own
resolution.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from finops_pipeline.constants import PROVIDER_GCP
from finops_pipeline.insights.recommendations import (
    KIND_COMMITMENT,
    KIND_RIGHTSIZE,
    KIND_TERMINATE,
    Recommendation,
)
from finops_pipeline.providers.gcp.errors import (
    RecommenderDataError,
    RecommenderSettingError,
)

ENV_RECOMMENDER_LOCATIONS = "FINOPS_GCP_RECOMMENDER_LOCATIONS"
#: The setting's value (and its default) for locations discovered per project from the export.
DISCOVER_LOCATIONS = "auto"
#: How far back the export is read for where a project runs. Recommender's cost recommenders
#: observe at most the last 30 days (idle resources, VM sizing).
LOCATION_LOOKBACK_DAYS = 30
GLOBAL = "global"
ZONE, REGION = "zone", "region"
#: The states whose savings are still to be had; sent as the list's filter.
OPEN_STATES = frozenset({"ACTIVE", "CLAIMED"})
OPEN_STATES_FILTER = "stateInfo.state = ACTIVE OR stateInfo.state = CLAIMED"
#: Large pages keep the requests down; the API caps what it returns per page itself.
PAGE_SIZE = 1000
#: 30 days, the period every cost recommender projects over.
MONTH_SECONDS = Decimal(2592000)
_NANO = Decimal("0.000000001")

_ZONE = re.compile(r"[a-z]+(?:-[a-z0-9]+)*[0-9]-[a-z]")
_REGION = re.compile(r"[a-z]+(?:-[a-z0-9]+)*[0-9]")
_DURATION = re.compile(r"(\d+(?:\.\d{1,9})?)s")


@dataclass(frozen=True)
class CostRecommender:
    """One Recommender recommender with cost recommendations, and how it is stored."""

    recommender_id: str
    #: The record's ``source``: the id's short name, e.g. ``compute_instance_machine_type``.
    source: str
    kind: str
    #: Which kinds of location it lists recommendations in (:data:`ZONE`, :data:`REGION`,
    #: :data:`GLOBAL`).
    scopes: tuple[str, ...]
    #: The predefined role that may list them (besides roles/recommender.viewer).
    viewer_role: str


COST_RECOMMENDERS: tuple[CostRecommender, ...] = (
    CostRecommender(
        "google.compute.instance.MachineTypeRecommender",
        "compute_instance_machine_type",
        KIND_RIGHTSIZE,
        (ZONE,),
        "roles/recommender.computeViewer",
    ),
    CostRecommender(
        "google.compute.instance.IdleResourceRecommender",
        "compute_instance_idle",
        KIND_TERMINATE,
        (ZONE,),
        "roles/recommender.computeViewer",
    ),
    CostRecommender(
        "google.compute.disk.IdleResourceRecommender",
        "compute_disk_idle",
        KIND_TERMINATE,
        (ZONE,),
        "roles/recommender.computeViewer",
    ),
    CostRecommender(
        "google.compute.address.IdleResourceRecommender",
        "compute_address_idle",
        KIND_TERMINATE,
        (REGION, GLOBAL),
        "roles/recommender.computeViewer",
    ),
    CostRecommender(
        "google.compute.image.IdleResourceRecommender",
        "compute_image_idle",
        KIND_TERMINATE,
        (GLOBAL,),
        "roles/recommender.computeViewer",
    ),
    CostRecommender(
        "google.compute.commitment.UsageCommitmentRecommender",
        "compute_commitment_usage",
        KIND_COMMITMENT,
        (REGION,),
        "roles/recommender.projectCudViewer",
    ),
    CostRecommender(
        "google.cloudsql.instance.IdleRecommender",
        "cloudsql_instance_idle",
        KIND_TERMINATE,
        (REGION,),
        "roles/recommender.cloudsqlViewer",
    ),
    CostRecommender(
        "google.cloudsql.instance.OverprovisionedRecommender",
        "cloudsql_instance_overprovisioned",
        KIND_RIGHTSIZE,
        (REGION,),
        "roles/recommender.cloudsqlViewer",
    ),
)
_BY_ID = {recommender.recommender_id: recommender for recommender in COST_RECOMMENDERS}


def recommender_by_id(recommender_id: str) -> CostRecommender:
    """The catalogue entry of ``recommender_id``."""
    try:
        return _BY_ID[recommender_id]
    except KeyError:
        raise RecommenderDataError(
            f"Recommender {recommender_id!r} is not one of the cost recommenders read."
        ) from None


# --- locations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecommenderLocations:
    """The zones and regions asked; ``global`` is always asked too."""

    zones: tuple[str, ...]
    regions: tuple[str, ...]

    @classmethod
    def parse(cls, locations: Iterable[str]) -> RecommenderLocations:
        """Zones and regions (``global`` accepted and implied); each zone adds its region.

        Raises:
            RecommenderSettingError: a name is neither a zone nor a region, or none is given.
        """
        zones: list[str] = []
        regions: list[str] = []
        for raw in locations:
            name = raw.strip().lower()
            if not name or name == GLOBAL:
                continue
            if _ZONE.fullmatch(name):
                zones.append(name)
                regions.append(_region_of(name))
            elif _REGION.fullmatch(name):
                regions.append(name)
            else:
                raise RecommenderSettingError(
                    f"{ENV_RECOMMENDER_LOCATIONS} names {raw.strip()[:40]!r}, which is neither "
                    "a zone (us-central1-a) nor a region (us-central1)."
                )
        if not zones and not regions:
            raise RecommenderSettingError(
                f"{ENV_RECOMMENDER_LOCATIONS} names no zone or region; list where your "
                "projects run, e.g. us-central1-a,us-central1-b,europe-west1-b."
            )
        return cls(tuple(dict.fromkeys(zones)), tuple(dict.fromkeys(regions)))

    @classmethod
    def from_export_rows(cls, rows: Iterable[Mapping[str, Any]]) -> RecommenderLocations:
        """Where a project ran, from the rows of the billing export's location query.

        Each row has ``region`` and ``zone`` (either may be NULL). Multi-regions (``US``,
        ``EU``) and ``global`` name no Recommender location and are skipped, as is anything
        else that is not a zone or region name. None found is not an error: only the global
        recommenders are asked then.
        """
        zones: set[str] = set()
        regions: set[str] = set()
        for row in rows:
            zone = str(row.get("zone") or "").strip().lower()
            region = str(row.get("region") or "").strip().lower()
            if _ZONE.fullmatch(zone):
                zones.add(zone)
                regions.add(_region_of(zone))
            if _REGION.fullmatch(region):
                regions.add(region)
        return cls(tuple(sorted(zones)), tuple(sorted(regions)))

    def describe(self) -> str:
        """``us-central1-a, us-central1-b, us-central1 and global``: for logs and notes."""
        return ", ".join((*self.zones, *self.regions)) + (
            " and global" if self.zones or self.regions else "global only"
        )

    def of_scope(self, scope: str) -> tuple[str, ...]:
        if scope == ZONE:
            return self.zones
        if scope == REGION:
            return self.regions
        return (GLOBAL,)


def _region_of(zone: str) -> str:
    """``us-central1`` of ``us-central1-a``."""
    return zone.rsplit("-", 1)[0]


def locations_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """``FINOPS_GCP_RECOMMENDER_LOCATIONS`` split on commas; empty when unset or ``auto``
    (each project's locations are then discovered from its billing export)."""
    text = environ.get(ENV_RECOMMENDER_LOCATIONS, "").strip()
    if not text or text.lower() == DISCOVER_LOCATIONS:
        return ()
    locations = tuple(part.strip() for part in text.split(",") if part.strip())
    RecommenderLocations.parse(locations)  # fail at start-up, not at the first refresh
    return locations


@dataclass(frozen=True)
class RecommenderQuery:
    """One list to page through: a recommender at one location of one project."""

    project: str
    location: str
    recommender: CostRecommender

    @property
    def parent(self) -> str:
        return (
            f"projects/{self.project}/locations/{self.location}/recommenders/"
            f"{self.recommender.recommender_id}"
        )


def plan_queries(
    project: str,
    locations: RecommenderLocations,
    recommenders: Sequence[CostRecommender] = COST_RECOMMENDERS,
) -> list[RecommenderQuery]:
    """Every (recommender, location) list of one project, in a stable order."""
    return [
        RecommenderQuery(project, location, recommender)
        for recommender in recommenders
        for scope in recommender.scopes
        for location in locations.of_scope(scope)
    ]


def request_count(
    locations: RecommenderLocations, recommenders: Sequence[CostRecommender] = COST_RECOMMENDERS
) -> int:
    """Requests of one project's refresh when every list fits one page."""
    return len(plan_queries("p", locations, recommenders))


# --- parsing -------------------------------------------------------------------------------


def _data_error(what: str, name: str) -> RecommenderDataError:
    return RecommenderDataError(
        f"GCP Recommender sent {what} in {name or 'a recommendation'}; nothing was stored for "
        "this project. Retry later, or report it with the run id if it persists."
    )


def money(value: Any, name: str) -> tuple[Decimal, str]:
    """A ``google.type.Money`` JSON object as an exact amount and its upper-case currency."""
    if not isinstance(value, Mapping):
        raise _data_error("no cost projection", name)
    currency = value.get("currencyCode")
    if not isinstance(currency, str) or not currency.strip():
        raise _data_error("a cost without a currency", name)
    units_text = value.get("units", "0")
    nanos_value = value.get("nanos", 0)
    try:
        # int64 arrives as a JSON string, int32 as a number; either must be a whole number.
        units = Decimal(int(str(units_text)))
        if isinstance(nanos_value, bool) or not isinstance(nanos_value, int | str):
            raise ValueError
        nanos = int(str(nanos_value))
    except (ValueError, TypeError, InvalidOperation):
        raise _data_error("a cost that is not a whole number of units and nanos", name) from None
    if not -999_999_999 <= nanos <= 999_999_999 or (units and nanos and (units > 0) != (nanos > 0)):
        raise _data_error("a cost whose units and nanos disagree", name)
    return _plain(units + Decimal(nanos).scaleb(-9)), currency.strip().upper()


def _plain(amount: Decimal) -> Decimal:
    """The same amount without trailing zeros after the point (never in exponent form)."""
    if amount == amount.to_integral_value():
        return amount.quantize(Decimal(1))
    return amount.normalize()


def duration_seconds(value: Any, name: str) -> Decimal:
    """A ``google.protobuf.Duration`` JSON string (``"2592000s"``) in seconds, positive."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    seconds = Decimal(match.group(1)) if match else Decimal(0)
    if seconds <= 0:
        raise _data_error(f"a cost projection duration {str(value)[:20]!r}", name)
    return seconds


def monthly_savings(cost: Decimal, seconds: Decimal) -> Decimal:
    """Savings over 30 days: the negated cost, rescaled exactly when the period is 30 days."""
    savings = -cost
    if seconds == MONTH_SECONDS:
        return savings
    return _plain((savings * MONTH_SECONDS / seconds).quantize(_NANO))


def _operations(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = item.get("content") or {}
    return [
        operation
        for group in content.get("operationGroups") or []
        for operation in (group or {}).get("operations") or []
        if isinstance(operation, Mapping)
    ]


def _last_segment(path: Any) -> str:
    return str(path or "").rstrip("/").rsplit("/", 1)[-1]


def _location_of(resource: str) -> str:
    match = re.search(r"/(?:zones|regions|locations)/([^/]+)/", resource)
    return match.group(1) if match else GLOBAL


def _is_placeholder(resource: str) -> bool:
    # Operations that create something name it with a placeholder ("$snapshot-name").
    return "$" in resource


def target_resource(item: Mapping[str, Any], recommender: CostRecommender, name: str) -> str:
    """What the recommendation is about, stable across its regenerations.

    The resource its operations change (the instance resized or stopped, the disk or address
    deleted), never a resource they would create; for a commitment purchase, which creates a
    commitment with a generated name, the region, plan and type it would buy.
    """
    operations = _operations(item)
    if recommender.kind == KIND_COMMITMENT:
        for operation in operations:
            value = operation.get("value")
            if operation.get("action") != "test" and isinstance(value, Mapping):
                resource = str(operation.get("resource") or "")
                region = _location_of(resource) if resource else "unknown-region"
                plan = value.get("plan") or "UNKNOWN_PLAN"
                kind = value.get("type") or "GENERAL_PURPOSE"
                return f"commitment/{region}/{plan}/{kind}"
        raise _data_error("a commitment recommendation without the commitment to buy", name)
    ranked = sorted(
        (
            operation
            for operation in operations
            if isinstance(operation.get("resource"), str)
            and operation["resource"]
            and not _is_placeholder(operation["resource"])
        ),
        # What is replaced or removed is the subject; a test only guards it.
        key=lambda operation: 0 if operation.get("action") in {"replace", "remove"} else 1,
    )
    if ranked:
        return str(ranked[0]["resource"])
    targets = [t for t in item.get("targetResources") or [] if isinstance(t, str) and t]
    if targets:
        return targets[0]
    raise _data_error("no resource", name)


def _matched_value(operations: Sequence[Mapping[str, Any]], path: str) -> str | None:
    for operation in operations:
        if operation.get("action") == "test" and operation.get("path") == path:
            matcher = operation.get("valueMatcher") or {}
            pattern = matcher.get("matchesPattern") if isinstance(matcher, Mapping) else None
            value = pattern if isinstance(pattern, str) else operation.get("value")
            if isinstance(value, str):
                return value
    return None


def _replaced_value(operations: Sequence[Mapping[str, Any]], path: str) -> str | None:
    for operation in operations:
        if operation.get("action") == "replace" and operation.get("path") == path:
            value = operation.get("value")
            if isinstance(value, str):
                return value
    return None


_SUBTYPE_ACTIONS = {
    "STOP_VM": "stop the VM",
    "SNAPSHOT_AND_DELETE_DISK": "snapshot, then delete the disk",
    "DELETE_DISK": "delete the disk",
    "DELETE_ADDRESS": "release the address",
    "DELETE_IMAGE": "delete the image",
    "STOP": "stop the instance",
    "DELETE": "delete it",
}


def _commitment_part(entry: Mapping[str, Any]) -> str:
    kind, amount = str(entry.get("type") or ""), str(entry.get("amount") or "?")
    if kind == "VCPU":
        return f"{amount} vCPUs"
    if kind == "MEMORY" and amount.isdigit():
        # Compute Engine commitments count memory in MB.
        return f"{_plain(Decimal(amount) / 1024)} GB memory"
    return f"{amount} {kind.lower().replace('_', ' ')}"


def describe(
    item: Mapping[str, Any], recommender: CostRecommender, resource: str
) -> tuple[str, str]:
    """What there is now and what to change it to, for a person to read."""
    operations = _operations(item)
    overview = (item.get("content") or {}).get("overview") or {}
    if not isinstance(overview, Mapping):
        overview = {}
    subject = f"{_last_segment(resource)} ({_location_of(resource)})"
    description = str(item.get("description") or "").strip()
    if recommender.source == "compute_instance_machine_type":
        current = _matched_value(operations, "/machineType") or overview.get("currentMachineType")
        target = _replaced_value(operations, "/machineType") or overview.get(
            "recommendedMachineType"
        )
        return (
            f"{_last_segment(current) or 'unknown type'}, VM {subject}",
            _last_segment(target) or description or "a smaller machine type",
        )
    if recommender.kind == KIND_COMMITMENT:
        value = next(
            (op.get("value") for op in operations if isinstance(op.get("value"), Mapping)), {}
        )
        parts = [
            _commitment_part(entry)
            for entry in value.get("resources") or []
            if isinstance(entry, Mapping)
        ]
        plan = {"TWELVE_MONTH": "1 year", "THIRTY_SIX_MONTH": "3 years"}.get(
            str(value.get("plan")), str(value.get("plan") or "")
        )
        region = resource.split("/")[1] if resource.startswith("commitment/") else ""
        bought = f"{', '.join(parts)} " if parts else ""
        return (
            f"on-demand {str(value.get('type') or 'usage').replace('_', ' ').lower()} in {region}",
            f"commit to {bought}for {plan}".replace("  ", " ").strip()
            if plan
            else description or "buy a commitment",
        )
    if recommender.kind == KIND_TERMINATE:
        subtype = str(item.get("recommenderSubtype") or "")
        kind = {
            "compute_instance_idle": "idle VM",
            "compute_disk_idle": "idle persistent disk",
            "compute_address_idle": "unused IP address",
            "compute_image_idle": "unused image",
            "cloudsql_instance_idle": "idle Cloud SQL instance",
        }.get(recommender.source, "idle resource")
        return f"{kind} {subject}", _SUBTYPE_ACTIONS.get(subtype) or description or "remove it"
    # Cloud SQL overprovisioned and anything else: the overview's tiers when it has them.
    current = overview.get("currentTier") or overview.get("currentMachineType")
    target = overview.get("recommendedTier") or overview.get("recommendedMachineType")
    return (
        f"{current + ', ' if isinstance(current, str) else ''}{subject}",
        str(target) if target else description or "a smaller size",
    )


def is_open(item: Mapping[str, Any]) -> bool:
    """ACTIVE or CLAIMED (the filter already asked for these; checked again)."""
    state = (item.get("stateInfo") or {}).get("state")
    return state in OPEN_STATES


def is_cost_saving(item: Mapping[str, Any]) -> bool:
    """Whether its primary impact is a cost saving (sizing can also recommend a *larger*
    machine, a PERFORMANCE recommendation that costs more; those are not savings)."""
    impact = item.get("primaryImpact") or {}
    return impact.get("category") == "COST"


def parse_recommendation(
    item: Mapping[str, Any], *, project: str, recommender: CostRecommender
) -> Recommendation | None:
    """One Recommendation JSON object as a record; None when it is not an open saving."""
    name = str(item.get("name") or "")
    if not is_open(item) or not is_cost_saving(item):
        return None
    projection = (item.get("primaryImpact") or {}).get("costProjection")
    if not isinstance(projection, Mapping):
        raise _data_error("a cost recommendation without a cost projection", name)
    cost, currency = money(projection.get("cost"), name)
    savings = monthly_savings(cost, duration_seconds(projection.get("duration"), name))
    if savings <= 0:
        return None
    resource = target_resource(item, recommender, name)
    current, recommended = describe(item, recommender, resource)
    return Recommendation(
        provider=PROVIDER_GCP,
        account=project,
        source=recommender.source,
        kind=recommender.kind,
        resource_id=resource,
        current=current,
        recommended=recommended,
        estimated_monthly_savings=savings,
        currency=currency,
        raw=dict(item),
    )


def parse_pages(
    pages: Iterable[Mapping[str, Any]], *, project: str, recommender: CostRecommender
) -> list[Recommendation]:
    """Every page's ``recommendations`` (ListRecommendationsResponse JSON) as records."""
    records = []
    for page in pages:
        for item in page.get("recommendations") or []:
            if not isinstance(item, Mapping):
                raise _data_error("a recommendation that is not an object", "")
            record = parse_recommendation(item, project=project, recommender=recommender)
            if record is not None:
                records.append(record)
    return records
