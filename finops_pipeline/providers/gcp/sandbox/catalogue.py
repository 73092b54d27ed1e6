"""GCP services and SKUs as they appear in billing exports, and the export table's schema.

Service ids and descriptions, SKU descriptions, units and credit types are GCP's own; SKU ids
are made up (derived from the description) and prices are rough list prices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class Sku:
    """One SKU: its description, usage unit and how much of it a dollar buys."""

    description: str
    unit: str
    pricing_unit: str
    units_per_pricing_unit: float
    price_per_pricing_unit: float
    #: Credit types this SKU can receive.
    credit_types: tuple[str, ...] = ()
    #: Billed per zone (VM cores and memory, persistent disks): its rows name a zone.
    zonal: bool = False

    @property
    def sku_id(self) -> str:
        return _sku_id(self.description)


@dataclass(frozen=True)
class Service:
    """One service: id, description and SKUs."""

    service_id: str
    description: str
    skus: tuple[Sku, ...]
    #: Typical daily cost of a mid-sized project, in USD.
    daily_scale: float


@cache
def _sku_id(description: str) -> str:
    digest = hashlib.sha256(description.encode("utf-8")).hexdigest().upper()
    return f"{digest[0:4]}-{digest[4:8]}-{digest[8:12]}"


#: Where every sandbox project runs: its rows name this region, and its zonal SKUs' rows these
#: zones (the GCP Recommender sandbox serves its VM and disk recommendations there too).
SANDBOX_REGION = "us-central1"
SANDBOX_PROJECT_ZONES: tuple[str, ...] = (
    "us-central1-a",
    "us-central1-b",
    "us-central1-c",
    "us-central1-f",
)

_HOUR = 3600.0
_GIB = 1024.0**3
_GIB_MONTH = _GIB * 86400 * 30

SERVICES: tuple[Service, ...] = (
    Service(
        "6F81-5844-456A",
        "Compute Engine",
        (
            Sku(
                "N2 Instance Core running in Americas",
                "seconds",
                "hour",
                _HOUR,
                0.031611,
                ("SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT"),
                zonal=True,
            ),
            Sku(
                "N2 Instance Ram running in Americas",
                "byte-seconds",
                "gibibyte hour",
                _GIB * _HOUR,
                0.004237,
                ("SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT"),
                zonal=True,
            ),
            Sku(
                "E2 Instance Core running in Americas",
                "seconds",
                "hour",
                _HOUR,
                0.021811,
                ("COMMITTED_USAGE_DISCOUNT", "FREE_TIER"),
                zonal=True,
            ),
            Sku(
                "Storage PD Capacity",
                "byte-seconds",
                "gibibyte month",
                _GIB_MONTH,
                0.04,
                zonal=True,
            ),
            Sku(
                "SSD backed PD Capacity",
                "byte-seconds",
                "gibibyte month",
                _GIB_MONTH,
                0.17,
                zonal=True,
            ),
            Sku(
                "Network Internet Egress from Americas to Americas",
                "bytes",
                "gibibyte",
                _GIB,
                0.12,
                ("FREE_TIER",),
            ),
        ),
        120.0,
    ),
    Service(
        "95FF-2EF5-5EA1",
        "Cloud Storage",
        (
            Sku(
                "Standard Storage US Multi-region",
                "byte-seconds",
                "gibibyte month",
                _GIB_MONTH,
                0.026,
                ("FREE_TIER",),
            ),
            Sku(
                "Multi-Region Standard Class A Operations",
                "requests",
                "10 thousand requests",
                10_000,
                0.10,
            ),
            Sku(
                "Download Worldwide Destinations (excluding Asia & Australia)",
                "bytes",
                "gibibyte",
                _GIB,
                0.12,
            ),
        ),
        25.0,
    ),
    Service(
        "24E6-581D-38E5",
        "BigQuery",
        (
            Sku("Analysis", "bytes", "tebibyte", 1024.0**4, 6.25, ("FREE_TIER",)),
            Sku(
                "Active Logical Storage",
                "byte-seconds",
                "gibibyte month",
                _GIB_MONTH,
                0.02,
                ("FREE_TIER",),
            ),
        ),
        30.0,
    ),
    Service(
        "9662-B51E-5089",
        "Cloud SQL",
        (
            Sku(
                "Cloud SQL for PostgreSQL: Zonal - vCPU in Americas",
                "seconds",
                "hour",
                _HOUR,
                0.0413,
                ("COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE",),
            ),
            Sku(
                "Cloud SQL for PostgreSQL: Zonal - RAM in Americas",
                "byte-seconds",
                "gibibyte hour",
                _GIB * _HOUR,
                0.007,
                ("COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE",),
            ),
            Sku(
                "Cloud SQL for PostgreSQL: Zonal - Standard storage in Americas",
                "byte-seconds",
                "gibibyte month",
                _GIB_MONTH,
                0.17,
            ),
        ),
        45.0,
    ),
    Service(
        "CCD8-9BF1-090E",
        "Kubernetes Engine",
        (
            Sku("Regional Kubernetes Clusters", "seconds", "hour", _HOUR, 0.10, ("FREE_TIER",)),
            Sku(
                "Autopilot Pod mCPU Requests (us-central1)",
                "mCPU-seconds",
                "hour",
                1000 * _HOUR,
                0.0445,
                ("COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE",),
            ),
        ),
        60.0,
    ),
    Service(
        "152E-C115-5142",
        "Cloud Run",
        (
            Sku(
                "CPU Allocation Time", "vCPU-seconds", "vCPU-second", 1.0, 0.000024, ("FREE_TIER",)
            ),
            Sku(
                "Memory Allocation Time",
                "byte-seconds",
                "gibibyte-second",
                _GIB,
                0.0000025,
                ("FREE_TIER",),
            ),
            Sku("Requests", "requests", "requests", 1.0, 0.0000004, ("FREE_TIER",)),
        ),
        8.0,
    ),
    Service(
        "5490-F7B7-8DF6",
        "Cloud Logging",
        (Sku("Log Storage cost", "bytes", "gibibyte", _GIB, 0.50, ("FREE_TIER",)),),
        4.0,
    ),
    Service(
        "58CD-E7C3-72CA",
        "Cloud Monitoring",
        (Sku("Metric Volume", "bytes", "mebibyte", 1024.0**2, 0.258, ("FREE_TIER",)),),
        3.0,
    ),
    Service(
        "A1E8-BE35-7EBC",
        "Cloud Pub/Sub",
        (Sku("Message Delivery Basic", "bytes", "tebibyte", 1024.0**4, 40.0, ("FREE_TIER",)),),
        2.0,
    ),
)

#: Credit names as the export shows them, by type.
CREDIT_NAMES: dict[str, str] = {
    "SUSTAINED_USAGE_DISCOUNT": "Sustained Usage Discount",
    "COMMITTED_USAGE_DISCOUNT": "Committed use discount: CPU",
    "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE": "Committed use discount - dollar based",
    "FREE_TIER": "Free tier usage",
    "PROMOTION": "Free Trial Credit",
    "DISCOUNT": "Spending based discounts (contractual)",
}


def _record(name: str, fields: list[dict[str, Any]], *, repeated: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "type": "RECORD",
        "mode": "REPEATED" if repeated else "NULLABLE",
        "fields": fields,
    }


def _column(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "mode": "NULLABLE"}


#: The standard usage cost export's columns (those the sandbox stores), in export order.
EXPORT_SCHEMA: tuple[dict[str, Any], ...] = (
    _column("billing_account_id", "STRING"),
    _record("service", [_column("id", "STRING"), _column("description", "STRING")]),
    _record("sku", [_column("id", "STRING"), _column("description", "STRING")]),
    _column("usage_start_time", "TIMESTAMP"),
    _column("usage_end_time", "TIMESTAMP"),
    _record(
        "project",
        [
            _column("id", "STRING"),
            _column("number", "STRING"),
            _column("name", "STRING"),
            _column("ancestry_numbers", "STRING"),
        ],
    ),
    _record("labels", [_column("key", "STRING"), _column("value", "STRING")], repeated=True),
    _record(
        "location",
        [
            _column("location", "STRING"),
            _column("country", "STRING"),
            _column("region", "STRING"),
            _column("zone", "STRING"),
        ],
    ),
    _column("export_time", "TIMESTAMP"),
    _column("cost", "FLOAT"),
    _column("currency", "STRING"),
    _column("currency_conversion_rate", "FLOAT"),
    _record(
        "usage",
        [
            _column("amount", "FLOAT"),
            _column("unit", "STRING"),
            _column("amount_in_pricing_units", "FLOAT"),
            _column("pricing_unit", "STRING"),
        ],
    ),
    _record(
        "credits",
        [
            _column("name", "STRING"),
            _column("amount", "FLOAT"),
            _column("full_name", "STRING"),
            _column("id", "STRING"),
            _column("type", "STRING"),
        ],
        repeated=True,
    ),
    _record("invoice", [_column("month", "STRING")]),
    _column("cost_type", "STRING"),
)
