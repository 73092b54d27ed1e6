"""What the sandbox organisation is made of: services, usage types, tenants and accounts.

Names follow what Cost Explorer reports: SERVICE is the long product name, USAGE_TYPE carries a
region prefix outside us-east-1 (``USW2-BoxUsage:m5.large``) and none in us-east-1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsageTypeSpec:
    """One usage type of a service, with the unit Cost Explorer reports its usage in."""

    name: str
    unit: str
    #: Usage units per dollar, so UsageQuantity moves with cost.
    units_per_dollar: float
    #: Share of the service's cost this usage type carries.
    weight: float = 1.0


@dataclass(frozen=True)
class ServiceSpec:
    """A service and its usage types; ``scale`` is a typical daily cost in dollars."""

    name: str
    scale: float
    usage_types: tuple[UsageTypeSpec, ...]
    #: Global services (CloudFront, Route 53, IAM-adjacent) carry no region prefix.
    regional: bool = True
    #: How much lower weekend usage is (1.0: flat).
    weekend_factor: float = 0.8
    #: Amortized/unblended ratio: below 1 where Savings Plans or RIs cover the usage.
    amortization: float = 1.0
    #: How often accounts use it, relative to the others.
    popularity: float = 1.0


def _u(name: str, unit: str, per_dollar: float, weight: float = 1.0) -> UsageTypeSpec:
    return UsageTypeSpec(name, unit, per_dollar, weight)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "Amazon Elastic Compute Cloud - Compute",
        400.0,
        (
            _u("BoxUsage:m5.large", "Hrs", 10.4, 3),
            _u("BoxUsage:t3.medium", "Hrs", 24.0, 2),
            _u("BoxUsage:c6g.xlarge", "Hrs", 7.3, 1.5),
            _u("SpotUsage:m5.xlarge", "Hrs", 13.0, 1),
        ),
        weekend_factor=0.7,
        amortization=0.82,
        popularity=10,
    ),
    ServiceSpec(
        "EC2 - Other",
        90.0,
        (
            _u("EBS:VolumeUsage.gp3", "GB-Mo", 12.5, 3),
            _u("NatGateway-Hours", "Hrs", 22.2, 1),
            _u("NatGateway-Bytes", "GB", 22.2, 1),
            _u("EBS:SnapshotUsage", "GB-Mo", 20.0, 1),
        ),
        weekend_factor=0.9,
        popularity=9,
    ),
    ServiceSpec(
        "Amazon Simple Storage Service",
        60.0,
        (
            _u("TimedStorage-ByteHrs", "GB-Mo", 43.5, 4),
            _u("Requests-Tier1", "Requests", 200000.0, 1),
            _u("Requests-Tier2", "Requests", 2500000.0, 0.5),
            _u("DataTransfer-Out-Bytes", "GB", 11.1, 1),
        ),
        weekend_factor=0.95,
        popularity=10,
    ),
    ServiceSpec(
        "Amazon Relational Database Service",
        180.0,
        (
            _u("InstanceUsage:db.r6g.large", "Hrs", 4.1, 3),
            _u("RDS:GP3-Storage", "GB-Mo", 8.7, 1),
            _u("Multi-AZUsage:db.m6g.large", "Hrs", 3.3, 1),
        ),
        weekend_factor=0.95,
        amortization=0.9,
        popularity=6,
    ),
    ServiceSpec(
        "Amazon Elastic Container Service for Kubernetes",
        35.0,
        (_u("AmazonEKS-Hours:perCluster", "Hrs", 10.0),),
        weekend_factor=1.0,
        popularity=5,
    ),
    ServiceSpec(
        "Amazon Elastic Container Service",
        25.0,
        (_u("Fargate-vCPU-Hours:perCPU", "Hrs", 24.7, 2), _u("Fargate-GB-Hours", "Hrs", 184.0, 1)),
        popularity=4,
    ),
    ServiceSpec(
        "AWS Lambda",
        12.0,
        (
            _u("Request", "Requests", 5000000.0, 1),
            _u("Lambda-GB-Second", "Lambda-GB-Second", 60000.0, 3),
        ),
        weekend_factor=0.6,
        popularity=7,
    ),
    ServiceSpec(
        "Amazon DynamoDB",
        30.0,
        (
            _u("ReadRequestUnits", "ReadRequestUnits", 4000000.0, 1),
            _u("WriteRequestUnits", "WriteRequestUnits", 800000.0, 1),
            _u("TimedStorage-ByteHrs", "GB-Mo", 4.0, 1),
        ),
        weekend_factor=0.75,
        popularity=5,
    ),
    ServiceSpec(
        "Amazon CloudFront",
        20.0,
        (
            _u("DataTransfer-Out-Bytes", "GB", 11.7, 3),
            _u("Requests-Tier1", "Requests", 1000000.0, 1),
        ),
        regional=False,
        weekend_factor=1.1,
        popularity=5,
    ),
    ServiceSpec(
        "Amazon Route 53",
        3.0,
        (_u("HostedZone", "HostedZone", 2.0, 1), _u("DNS-Queries", "Queries", 2500000.0, 1)),
        regional=False,
        weekend_factor=1.0,
        popularity=7,
    ),
    ServiceSpec(
        "AmazonCloudWatch",
        15.0,
        (
            _u("CW:MetricMonitorUsage", "Metrics", 3.3, 2),
            _u("DataProcessing-Bytes", "GB", 2.0, 2),
            _u("TimedStorage-ByteHrs", "GB-Mo", 33.0, 1),
        ),
        weekend_factor=0.95,
        popularity=9,
    ),
    ServiceSpec(
        "Amazon Virtual Private Cloud",
        8.0,
        (_u("PublicIPv4:InUseAddress", "Hrs", 200.0),),
        weekend_factor=1.0,
        popularity=8,
    ),
    ServiceSpec(
        "AWS Key Management Service",
        2.0,
        (_u("KMS-Keys", "Keys", 1.0, 1), _u("KMS-Requests", "Requests", 330000.0, 1)),
        weekend_factor=0.9,
        popularity=7,
    ),
    ServiceSpec(
        "AWS Secrets Manager",
        1.5,
        (_u("AWSSecretsManager-Secrets", "Secrets", 2.5),),
        weekend_factor=1.0,
        popularity=5,
    ),
    ServiceSpec(
        "Amazon ElastiCache",
        55.0,
        (_u("NodeUsage:cache.r6g.large", "Hrs", 4.9),),
        weekend_factor=1.0,
        amortization=0.88,
        popularity=3,
    ),
    ServiceSpec(
        "Amazon OpenSearch Service",
        70.0,
        (_u("ESInstance:r6g.large.search", "Hrs", 5.9, 3), _u("ES:GP3-Storage", "GB-Mo", 8.2, 1)),
        weekend_factor=1.0,
        popularity=2,
    ),
    ServiceSpec(
        "Amazon Redshift",
        120.0,
        (_u("Node:ra3.xlplus", "Hrs", 0.92, 3), _u("RMS:ManagedStorage", "GB-Mo", 41.7, 1)),
        weekend_factor=0.85,
        amortization=0.85,
        popularity=2,
    ),
    ServiceSpec(
        "Amazon Athena",
        10.0,
        (_u("DataScannedInTB", "Terabytes", 0.2),),
        weekend_factor=0.4,
        popularity=3,
    ),
    ServiceSpec(
        "AWS Glue",
        18.0,
        (_u("ETL-DPU-Hour", "DPU-Hour", 2.3, 3), _u("Catalog-Request", "Requests", 1000000.0, 1)),
        weekend_factor=0.5,
        popularity=3,
    ),
    ServiceSpec(
        "Amazon Kinesis",
        22.0,
        (_u("Storage-ShardHour", "ShardHour", 66.7),),
        weekend_factor=1.0,
        popularity=2,
    ),
    ServiceSpec(
        "Amazon Simple Queue Service",
        4.0,
        (_u("Requests-RBP", "Requests", 2500000.0),),
        weekend_factor=0.7,
        popularity=6,
    ),
    ServiceSpec(
        "Amazon Simple Notification Service",
        1.0,
        (_u("Requests-Tier1", "Requests", 2000000.0, 1), _u("SMS-Message", "Count", 150.0, 1)),
        weekend_factor=0.8,
        popularity=5,
    ),
    ServiceSpec(
        "Amazon API Gateway",
        9.0,
        (_u("ApiGatewayRequest", "Requests", 285000.0),),
        weekend_factor=0.7,
        popularity=4,
    ),
    ServiceSpec(
        "Elastic Load Balancing",
        28.0,
        (_u("LoadBalancerUsage", "Hrs", 44.0, 2), _u("LCUUsage", "LCU-Hrs", 125.0, 1)),
        weekend_factor=0.9,
        popularity=8,
    ),
    ServiceSpec(
        "Amazon Elastic File System",
        14.0,
        (_u("TimedStorage-ByteHrs", "GB-Mo", 3.3),),
        weekend_factor=1.0,
        popularity=3,
    ),
    ServiceSpec(
        "AWS Backup",
        6.0,
        (_u("WarmStorage-ByteHrs-EBS", "GB-Mo", 20.0),),
        weekend_factor=1.0,
        popularity=3,
    ),
    ServiceSpec(
        "Amazon EC2 Container Registry (ECR)",
        2.0,
        (_u("TimedStorage-ByteHrs", "GB-Mo", 10.0),),
        weekend_factor=1.0,
        popularity=5,
    ),
    ServiceSpec(
        "AWS Config",
        3.0,
        (_u("ConfigurationItemRecorded", "ConfigurationItemRecorded", 333.0),),
        weekend_factor=0.9,
        popularity=4,
    ),
    ServiceSpec(
        "AWS CloudTrail",
        2.5,
        (_u("PaidEventsRecorded", "Events", 500000.0),),
        regional=True,
        weekend_factor=0.9,
        popularity=5,
    ),
    ServiceSpec(
        "Amazon GuardDuty",
        7.0,
        (
            _u("PaidEventsAnalyzed", "Events", 250000.0, 2),
            _u("PaidS3DataEventsAnalyzed", "Events", 1250000.0, 1),
        ),
        weekend_factor=0.95,
        popularity=4,
    ),
    ServiceSpec(
        "AWS Security Hub",
        3.0,
        (_u("PaidComplianceCheck", "Checks", 1000.0),),
        weekend_factor=1.0,
        popularity=3,
    ),
    ServiceSpec(
        "AWS WAF",
        4.0,
        (_u("WebACL", "WebACL", 0.2, 1), _u("Request", "Requests", 1670000.0, 1)),
        regional=False,
        weekend_factor=1.0,
        popularity=3,
    ),
    ServiceSpec(
        "Amazon SageMaker",
        85.0,
        (_u("ml.g5.xlarge-Notebook", "Hrs", 0.71, 2), _u("ml.m5.xlarge-Training", "Hrs", 4.3, 1)),
        weekend_factor=0.4,
        popularity=2,
    ),
    ServiceSpec(
        "Amazon Bedrock",
        40.0,
        (
            _u("InputTokenCount-Units", "Count", 330000.0, 1),
            _u("OutputTokenCount-Units", "Count", 66000.0, 2),
        ),
        regional=True,
        weekend_factor=0.5,
        popularity=2,
    ),
    ServiceSpec(
        "AWS Step Functions",
        2.0,
        (_u("StateTransition", "StateTransitions", 40000.0),),
        weekend_factor=0.7,
        popularity=3,
    ),
    ServiceSpec(
        "Amazon EventBridge",
        1.0,
        (_u("Event-64K-Chunks", "Events", 1000000.0),),
        weekend_factor=0.8,
        popularity=4,
    ),
    ServiceSpec(
        "AWS Systems Manager",
        1.2,
        (_u("ParameterStore-APIRequest", "Requests", 20000.0),),
        weekend_factor=0.9,
        popularity=4,
    ),
    ServiceSpec(
        "Amazon Managed Streaming for Apache Kafka",
        65.0,
        (_u("Kafka.m5.large", "Hrs", 4.8, 3), _u("Kafka.Storage.GP2", "GB-Mo", 10.0, 1)),
        weekend_factor=1.0,
        popularity=1,
    ),
    ServiceSpec(
        "Amazon MQ",
        11.0,
        (_u("BrokerUsage:mq.m5.large", "Hrs", 3.3),),
        weekend_factor=1.0,
        popularity=1,
    ),
    ServiceSpec(
        "AWS Data Transfer",
        25.0,
        (
            _u("DataTransfer-Regional-Bytes", "GB", 100.0, 2),
            _u("DataTransfer-Out-Bytes", "GB", 11.1, 2),
        ),
        weekend_factor=0.9,
        popularity=8,
    ),
    ServiceSpec(
        "Amazon Cognito",
        3.5,
        (_u("CognitoUserPoolsMAU", "MAU", 640.0),),
        regional=True,
        weekend_factor=1.1,
        popularity=2,
    ),
    ServiceSpec(
        "Amazon Simple Email Service",
        2.0,
        (_u("Recipients", "Count", 10000.0),),
        weekend_factor=0.6,
        popularity=3,
    ),
    ServiceSpec(
        "AWS CodeBuild",
        5.0,
        (_u("Build-Min:Linux:g1.small", "Minutes", 200.0),),
        weekend_factor=0.2,
        popularity=3,
    ),
    ServiceSpec(
        "AWS X-Ray",
        1.0,
        (_u("XRay-TracesStored", "Traces", 200000.0),),
        weekend_factor=0.7,
        popularity=2,
    ),
    ServiceSpec(
        "Amazon Timestream",
        6.0,
        (_u("MemoryStore-ByteHrs", "GB-Hours", 277.0),),
        weekend_factor=1.0,
        popularity=1,
    ),
    ServiceSpec(
        "Amazon DocumentDB (with MongoDB compatibility)",
        45.0,
        (_u("InstanceUsage:db.r6g.large", "Hrs", 3.6),),
        weekend_factor=1.0,
        amortization=0.9,
        popularity=1,
    ),
    ServiceSpec(
        "Amazon Neptune",
        38.0,
        (_u("InstanceUsage:db.r5.large", "Hrs", 2.9),),
        weekend_factor=1.0,
        popularity=1,
    ),
    ServiceSpec(
        "AWS Transfer Family",
        7.2,
        (_u("ProtocolHours", "Hrs", 3.3),),
        weekend_factor=1.0,
        popularity=1,
    ),
    ServiceSpec(
        "Amazon WorkSpaces",
        30.0,
        (_u("AutoStop-Standard-Usage", "Hrs", 3.4),),
        weekend_factor=0.3,
        popularity=1,
    ),
    ServiceSpec(
        "AWS Directory Service",
        4.8,
        (_u("DirectoryService-Hours", "Hrs", 5.0),),
        weekend_factor=1.0,
        popularity=1,
    ),
    ServiceSpec(
        "Amazon Inspector",
        2.6,
        (_u("Inspector-EC2-Instance", "Instances", 0.8),),
        weekend_factor=1.0,
        popularity=2,
    ),
    ServiceSpec(
        "Savings Plans for AWS Compute usage",
        150.0,
        (_u("ComputeSP:1yrNoUpfront", "Hrs", 24.0),),
        regional=False,
        weekend_factor=1.0,
        amortization=1.0,
        popularity=3,
    ),
    ServiceSpec(
        "AWS Support (Business)",
        20.0,
        (_u("Dollar", "Dollar", 1.0),),
        regional=False,
        weekend_factor=1.0,
        popularity=4,
    ),
    ServiceSpec(
        "Tax",
        10.0,
        (_u("Tax", "N/A", 0.0),),
        regional=False,
        weekend_factor=1.0,
        popularity=3,
    ),
)

# Region prefixes as Cost Explorer writes them; us-east-1 has none.
REGION_PREFIXES: tuple[str, ...] = ("", "USW2-", "EUC1-", "EU-", "APN1-", "APS2-", "CAN1-")

# Negative amounts: promotional credits run for a while, refunds land on single days.
CREDIT_USAGE_TYPE = "Credit-PromotionalCredits"
REFUND_USAGE_TYPE = "Refund"


@dataclass(frozen=True)
class SandboxAccount:
    """A sandbox AWS account a tenant registers; ``linked`` lists an organisation's members."""

    number: str
    name: str
    linked: tuple[str, ...] = ()


@dataclass(frozen=True)
class SandboxTenant:
    """A tenant of the demo and the accounts it registers."""

    tenant_id: str
    display_name: str
    accounts: tuple[SandboxAccount, ...]


# The demo's organisation. Acme registers its management (payer) account, which sees its two
# member accounts' costs summed, as Cost Explorer shows them to a payer.
DEMO_TENANTS: tuple[SandboxTenant, ...] = (
    SandboxTenant(
        "acme-retail",
        "Acme Retail",
        (SandboxAccount("210000000001", "acme payer", linked=("210000000002", "210000000003")),),
    ),
    SandboxTenant(
        "globex",
        "Globex Labs",
        (
            SandboxAccount("320000000001", "globex production"),
            SandboxAccount("320000000002", "globex staging"),
        ),
    ),
    SandboxTenant(
        "initech",
        "Initech",
        (SandboxAccount("430000000001", "initech platform"),),
    ),
)


def account_names() -> dict[str, str]:
    """Every sandbox account's name, members included ("acme payer member 210000000002")."""
    names: dict[str, str] = {}
    for tenant in DEMO_TENANTS:
        for account in tenant.accounts:
            names[account.number] = account.name
            for member in account.linked:
                names.setdefault(member, f"{tenant.tenant_id} member {member[-4:]}")
    return names


def organisation_members(account_number: str) -> tuple[str, ...]:
    """The accounts whose costs ``account_number`` sees: its members and itself, or itself."""
    for tenant in DEMO_TENANTS:
        for account in tenant.accounts:
            if account.number == account_number and account.linked:
                return (account.number, *account.linked)
    return (account_number,)
