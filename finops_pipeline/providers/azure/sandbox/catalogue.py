"""What the synthetic Azure estate is made of: services and meters, tenants and subscriptions.

Service and meter names are the ones Cost Management reports for ``ServiceName`` and ``Meter``.
Identifiers are fixed UUIDs derived from names, so every process agrees on them.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.spec import SANDBOX_AUTHORITY_HOST_NAME
from finops_pipeline.security.credentials import Secret

_NAMESPACE = uuid.UUID("5d2b9f1e-3c1a-4c6e-9a1f-0c7e5b8d4a21")
_SECRET_DOMAIN = b"finops-azure-sandbox-secret-v1"


@dataclass(frozen=True)
class MeterSpec:
    """One meter of a service: its unit, how many units a dollar buys, its share of spend."""

    name: str
    unit: str
    units_per_dollar: float
    weight: float = 1.0


@dataclass(frozen=True)
class ServiceSpec:
    """A service as Cost Management names it, with its typical daily spend and meters."""

    name: str
    daily_scale: float
    popularity: float
    weekend_factor: float
    meters: tuple[MeterSpec, ...]


def _m(name: str, unit: str, per_dollar: float, weight: float = 1.0) -> MeterSpec:
    return MeterSpec(name, unit, per_dollar, weight)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "Virtual Machines",
        420.0,
        1.0,
        0.7,
        (
            _m("D4s v5", "1 Hour", 5.2, 3.0),
            _m("D2s v5", "1 Hour", 10.4, 2.0),
            _m("E8s v5", "1 Hour", 1.98, 1.5),
            _m("B2ms", "1 Hour", 12.0, 0.6),
        ),
    ),
    ServiceSpec(
        "Storage",
        95.0,
        1.0,
        0.95,
        (
            _m("Hot LRS Data Stored", "1 GB/Month", 54.0, 3.0),
            _m("P10 LRS Disk", "1/Month", 0.051, 2.0),
            _m("LRS Write Operations", "10K", 18.0, 0.5),
            _m("Read Operations", "10K", 230.0, 0.3),
        ),
    ),
    ServiceSpec("Bandwidth", 40.0, 0.9, 0.8, (_m("Standard Data Transfer Out", "1 GB", 11.5),)),
    ServiceSpec(
        "Azure App Service",
        120.0,
        0.7,
        0.9,
        (_m("P1 v3 App", "1 Hour", 4.1, 2.0), _m("S1 App", "1 Hour", 10.0, 1.0)),
    ),
    ServiceSpec("SQL Database", 210.0, 0.6, 0.85, (_m("vCore", "1 Hour", 3.9),)),
    ServiceSpec("Azure Cosmos DB", 150.0, 0.4, 0.9, (_m("100 RU/s", "1/Hour", 125.0),)),
    ServiceSpec(
        "Azure Kubernetes Service", 35.0, 0.5, 1.0, (_m("Standard Uptime SLA", "1 Hour", 10.0),)
    ),
    ServiceSpec("Key Vault", 4.0, 0.8, 0.7, (_m("Operations", "10K", 33.0),)),
    ServiceSpec("Azure DNS", 2.0, 0.6, 1.0, (_m("Public Zone", "1/Month", 2.0),)),
    ServiceSpec(
        "Load Balancer",
        18.0,
        0.6,
        0.85,
        (
            _m("Standard Data Processed", "1 GB", 200.0),
            _m("Standard Overage LB Rules", "1 Hour", 100.0),
        ),
    ),
    ServiceSpec(
        "Virtual Network", 12.0, 0.8, 1.0, (_m("Standard IPv4 Static Public IP", "1 Hour", 200.0),)
    ),
    ServiceSpec(
        "Log Analytics", 60.0, 0.7, 0.9, (_m("Analytics Logs Data Ingestion", "1 GB", 0.43),)
    ),
    ServiceSpec(
        "Azure Monitor", 9.0, 0.6, 0.95, (_m("Standard Native Metric Alert Rule", "1/Month", 10.0),)
    ),
    ServiceSpec("Redis Cache", 45.0, 0.3, 1.0, (_m("C1 Cache Instance", "1 Hour", 9.6),)),
    ServiceSpec(
        "Azure Database for PostgreSQL",
        80.0,
        0.35,
        0.9,
        (_m("vCore", "1 Hour", 6.1, 2.0), _m("Storage Data Stored", "1 GB/Month", 8.6, 0.5)),
    ),
    ServiceSpec("Container Registry", 5.0, 0.5, 1.0, (_m("Standard Registry Unit", "1/Day", 6.0),)),
    ServiceSpec(
        "Microsoft Defender for Cloud", 30.0, 0.5, 1.0, (_m("Standard Node", "1/Day", 2.0),)
    ),
    ServiceSpec("Event Hubs", 22.0, 0.25, 0.8, (_m("Standard Throughput Unit", "1 Hour", 33.0),)),
    ServiceSpec("Service Bus", 10.0, 0.3, 0.8, (_m("Standard Base Unit", "1/Hour", 75.0),)),
    ServiceSpec(
        "Azure Front Door Service",
        28.0,
        0.25,
        0.8,
        (_m("Standard Data Transfer Out", "1 GB", 12.0),),
    ),
    ServiceSpec(
        "Functions", 6.0, 0.5, 0.6, (_m("Standard Execution Time", "1 GB Second", 62500.0),)
    ),
    ServiceSpec("Backup", 14.0, 0.4, 1.0, (_m("LRS Data Stored", "1 GB/Month", 45.0),)),
    ServiceSpec("Azure Firewall", 40.0, 0.2, 1.0, (_m("Standard Deployment", "1 Hour", 0.8),)),
)

#: The service whose largest meter may be covered by a one-year reservation.
RESERVED_SERVICE = "Virtual Machines"
#: The meter a reservation purchase appears under in ActualCost (and nowhere in AmortizedCost).
RESERVATION_PURCHASE_METER = "Reserved VM Instance, 1 Year"


@dataclass(frozen=True)
class SandboxSubscription:
    """A subscription: its id, display name, billing currency and whether the app may read it."""

    subscription_id: str
    name: str
    currency: str = "USD"
    #: Whether the tenant's app has Cost Management Reader on it (a 403 otherwise).
    reader: bool = True


@dataclass(frozen=True)
class SandboxTenant:
    """An Entra tenant with one app registration and its subscriptions."""

    name: str
    tenant_id: str
    client_id: str
    subscriptions: tuple[SandboxSubscription, ...]

    def subscription(self, subscription_id: str) -> SandboxSubscription | None:
        for subscription in self.subscriptions:
            if subscription.subscription_id == subscription_id.lower():
                return subscription
        return None


def sandbox_uuid(name: str) -> str:
    """A fixed UUID for a name."""
    return str(uuid.uuid5(_NAMESPACE, name))


def sandbox_tenant(
    name: str, subscriptions: tuple[tuple[str, str, bool], ...] = ()
) -> SandboxTenant:
    """A tenant named ``name`` with ``(subscription name, currency, reader)`` subscriptions."""
    return SandboxTenant(
        name=name,
        tenant_id=sandbox_uuid(f"tenant:{name}"),
        client_id=sandbox_uuid(f"app:{name}"),
        subscriptions=tuple(
            SandboxSubscription(
                subscription_id=sandbox_uuid(f"subscription:{name}:{label}"),
                name=label,
                currency=currency,
                reader=reader,
            )
            for label, currency, reader in subscriptions
        ),
    )


DEFAULT_TENANTS: tuple[SandboxTenant, ...] = (
    sandbox_tenant(
        "fabrikam",
        (
            ("fabrikam-production", "USD", True),
            ("fabrikam-development", "USD", True),
            ("fabrikam-europe", "EUR", True),
            ("fabrikam-no-reader", "USD", False),
        ),
    ),
)


def sandbox_client_secret(tenant: SandboxTenant) -> Secret:
    """The app's client secret: derived, never stored anywhere."""
    digest = hmac.new(
        _SECRET_DOMAIN, f"{tenant.tenant_id}:{tenant.client_id}".encode(), hashlib.sha256
    )
    return Secret(f"sbx~{digest.hexdigest()[:36]}")


def sandbox_credentials(tenant: SandboxTenant) -> AzureClientSecretCredentials:
    """The tenant app's credentials, as an operator would register them (with the sandbox's
    Entra authority host, as for a sovereign cloud)."""
    return AzureClientSecretCredentials(
        tenant_id=tenant.tenant_id,
        client_id=tenant.client_id,
        client_secret=sandbox_client_secret(tenant),
        authority_host=f"https://{SANDBOX_AUTHORITY_HOST_NAME}",
    )
