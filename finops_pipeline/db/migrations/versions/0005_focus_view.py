"""The FOCUS 1.2 view of cost_data, and the service-to-ServiceCategory mapping it reads.

``cost_data_focus`` presents every ``cost_data`` row in FinOps FOCUS 1.2 column names. It is
created with ``security_invoker = true`` (PostgreSQL 15+), so the Row-Level Security policies of
``cost_data`` and ``cloud_accounts`` apply to whoever queries the view: a ``finops_reporting``
session sees only the tenant it set, exactly as on the tables. Without it a view runs with its
owner's rights, and an owner that is a superuser or the tables' owner would show every tenant.

``focus_service_subcategories`` holds FOCUS 1.2's allowed (ServiceCategory, ServiceSubcategory)
pairs; ``focus_service_categories`` maps each provider's service names onto one pair, with a
foreign key so a mapping can only name an allowed pair. Services with no mapping show as
"Other" / "Other (Other)". ``focus_units`` respells provider units in FOCUS Unit Format.
Operators may add rows to both for services and units seen later.

``finops_reporting`` is granted to ``finops_pipeline`` so that the ``finops`` CLI, which logs in
as a pipeline member, can drop to the reporting role (``SET LOCAL ROLE``) for tenant exports
and be held to the same policies as a dashboard.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PIPELINE_ROLE = "finops_pipeline"
REPORTING_ROLE = "finops_reporting"
_RELATIONS = (
    "cost_data_focus",
    "focus_service_categories",
    "focus_service_subcategories",
    "focus_units",
)

#: FOCUS 1.2 ServiceSubcategory allowed values, each with its one parent ServiceCategory.
SERVICE_SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "AI and Machine Learning": (
        "AI Platforms",
        "Bots",
        "Generative AI",
        "Machine Learning",
        "Natural Language Processing",
        "Other (AI and Machine Learning)",
    ),
    "Analytics": (
        "Analytics Platforms",
        "Business Intelligence",
        "Data Processing",
        "Search",
        "Streaming Analytics",
        "Other (Analytics)",
    ),
    "Business Applications": ("Productivity and Collaboration", "Other (Business Applications)"),
    "Compute": (
        "Containers",
        "End User Computing",
        "Quantum Compute",
        "Serverless Compute",
        "Virtual Machines",
        "Other (Compute)",
    ),
    "Databases": (
        "Caching",
        "Data Warehouses",
        "Ledger Databases",
        "NoSQL Databases",
        "Relational Databases",
        "Time Series Databases",
        "Other (Databases)",
    ),
    "Developer Tools": (
        "Developer Platforms",
        "Continuous Integration and Deployment",
        "Development Environments",
        "Source Code Management",
        "Quality Assurance",
        "Other (Developer Tools)",
    ),
    "Identity": ("Identity and Access Management", "Other (Identity)"),
    "Integration": ("API Management", "Messaging", "Workflow Orchestration", "Other (Integration)"),
    "Internet of Things": ("IoT Analytics", "IoT Platforms", "Other (Internet of Things)"),
    "Management and Governance": (
        "Architecture",
        "Compliance",
        "Cost Management",
        "Data Governance",
        "Disaster Recovery",
        "Endpoint Management",
        "Observability",
        "Support",
        "Other (Management and Governance)",
    ),
    "Media": ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality", "Other (Media)"),
    "Migration": ("Data Migration", "Resource Migration", "Other (Migration)"),
    "Mobile": ("Other (Mobile)",),
    "Multicloud": ("Multicloud Integration", "Other (Multicloud)"),
    "Networking": (
        "Application Networking",
        "Content Delivery",
        "Network Connectivity",
        "Network Infrastructure",
        "Network Routing",
        "Network Security",
        "Other (Networking)",
    ),
    "Security": (
        "Secret Management",
        "Security Posture Management",
        "Threat Detection and Response",
        "Other (Security)",
    ),
    "Storage": (
        "Backup Storage",
        "Block Storage",
        "File Storage",
        "Object Storage",
        "Storage Platforms",
        "Other (Storage)",
    ),
    "Web": ("Application Platforms", "Other (Web)"),
    "Other": ("Other (Other)",),
}

# (service name as the provider reports it, ServiceCategory, ServiceSubcategory).
# AWS: Cost Explorer's SERVICE dimension values, every one the sandbox generates first.
AWS_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("Amazon Elastic Compute Cloud - Compute", "Compute", "Virtual Machines"),
    # EBS volumes and snapshots, NAT gateways, Elastic IPs: EC2's other charges.
    ("EC2 - Other", "Compute", "Other (Compute)"),
    ("Amazon Simple Storage Service", "Storage", "Object Storage"),
    ("Amazon Relational Database Service", "Databases", "Relational Databases"),
    ("Amazon Elastic Container Service for Kubernetes", "Compute", "Containers"),
    ("Amazon Elastic Container Service", "Compute", "Containers"),
    ("AWS Lambda", "Compute", "Serverless Compute"),
    ("Amazon DynamoDB", "Databases", "NoSQL Databases"),
    ("Amazon CloudFront", "Networking", "Content Delivery"),
    ("Amazon Route 53", "Networking", "Network Routing"),
    ("AmazonCloudWatch", "Management and Governance", "Observability"),
    ("Amazon Virtual Private Cloud", "Networking", "Network Infrastructure"),
    ("AWS Key Management Service", "Security", "Secret Management"),
    ("AWS Secrets Manager", "Security", "Secret Management"),
    ("Amazon ElastiCache", "Databases", "Caching"),
    ("Amazon OpenSearch Service", "Analytics", "Search"),
    ("Amazon Redshift", "Databases", "Data Warehouses"),
    ("Amazon Athena", "Analytics", "Analytics Platforms"),
    ("AWS Glue", "Analytics", "Data Processing"),
    ("Amazon Kinesis", "Analytics", "Streaming Analytics"),
    ("Amazon Simple Queue Service", "Integration", "Messaging"),
    ("Amazon Simple Notification Service", "Integration", "Messaging"),
    ("Amazon API Gateway", "Integration", "API Management"),
    ("Elastic Load Balancing", "Networking", "Application Networking"),
    ("Amazon Elastic File System", "Storage", "File Storage"),
    ("AWS Backup", "Storage", "Backup Storage"),
    ("Amazon EC2 Container Registry (ECR)", "Compute", "Containers"),
    ("AWS Config", "Management and Governance", "Compliance"),
    ("AWS CloudTrail", "Management and Governance", "Compliance"),
    ("Amazon GuardDuty", "Security", "Threat Detection and Response"),
    ("AWS Security Hub", "Security", "Security Posture Management"),
    ("AWS WAF", "Networking", "Network Security"),
    ("Amazon SageMaker", "AI and Machine Learning", "Machine Learning"),
    ("Amazon Bedrock", "AI and Machine Learning", "Generative AI"),
    ("AWS Step Functions", "Integration", "Workflow Orchestration"),
    ("Amazon EventBridge", "Integration", "Messaging"),
    ("AWS Systems Manager", "Management and Governance", "Other (Management and Governance)"),
    ("Amazon Managed Streaming for Apache Kafka", "Analytics", "Streaming Analytics"),
    ("Amazon MQ", "Integration", "Messaging"),
    ("AWS Data Transfer", "Networking", "Other (Networking)"),
    ("Amazon Cognito", "Identity", "Identity and Access Management"),
    ("Amazon Simple Email Service", "Business Applications", "Other (Business Applications)"),
    ("AWS CodeBuild", "Developer Tools", "Continuous Integration and Deployment"),
    ("AWS X-Ray", "Management and Governance", "Observability"),
    ("Amazon Timestream", "Databases", "Time Series Databases"),
    ("Amazon DocumentDB (with MongoDB compatibility)", "Databases", "NoSQL Databases"),
    ("Amazon Neptune", "Databases", "NoSQL Databases"),
    ("AWS Transfer Family", "Migration", "Data Migration"),
    ("Amazon WorkSpaces", "Compute", "End User Computing"),
    ("AWS Directory Service", "Identity", "Identity and Access Management"),
    ("Amazon Inspector", "Security", "Security Posture Management"),
    # A commitment bought to cover compute usage; the fee itself is a Purchase (see the view).
    ("Savings Plans for AWS Compute usage", "Compute", "Other (Compute)"),
    ("AWS Support (Business)", "Management and Governance", "Support"),
    ("Tax", "Other", "Other (Other)"),
    # Common services the sandbox does not generate.
    ("AWS Cost Explorer", "Management and Governance", "Cost Management"),
    ("AWS Support (Developer)", "Management and Governance", "Support"),
    ("AWS Support (Enterprise)", "Management and Governance", "Support"),
    ("Amazon Elastic MapReduce", "Analytics", "Data Processing"),
    ("Amazon QuickSight", "Analytics", "Business Intelligence"),
    ("Amazon Kinesis Firehose", "Analytics", "Streaming Analytics"),
    ("Amazon Lightsail", "Compute", "Virtual Machines"),
    ("AWS Certificate Manager", "Security", "Secret Management"),
    ("AWS Shield", "Networking", "Network Security"),
    ("AWS Direct Connect", "Networking", "Network Connectivity"),
    ("AWS Global Accelerator", "Networking", "Network Routing"),
    ("AWS Database Migration Service", "Migration", "Data Migration"),
    ("AWS IoT", "Internet of Things", "IoT Platforms"),
    ("AWS Amplify", "Web", "Application Platforms"),
    ("AWS Elastic Beanstalk", "Web", "Application Platforms"),
    ("Amazon Rekognition", "AI and Machine Learning", "Machine Learning"),
    ("Amazon Comprehend", "AI and Machine Learning", "Natural Language Processing"),
    ("Amazon Lex", "AI and Machine Learning", "Bots"),
    ("AWS Elemental MediaConvert", "Media", "Content Creation"),
    ("Amazon Registrar", "Networking", "Network Routing"),
    ("AWS CodePipeline", "Developer Tools", "Continuous Integration and Deployment"),
    ("AWS CloudShell", "Developer Tools", "Development Environments"),
    ("AWS IAM Identity Center", "Identity", "Identity and Access Management"),
    ("Amazon Macie", "Security", "Threat Detection and Response"),
)

# Azure: the ServiceName column of Cost Management (the meter category).
AZURE_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("Virtual Machines", "Compute", "Virtual Machines"),
    ("Virtual Machines Licenses", "Compute", "Virtual Machines"),
    ("Azure Kubernetes Service", "Compute", "Containers"),
    ("Container Instances", "Compute", "Containers"),
    ("Azure Container Apps", "Compute", "Containers"),
    ("Container Registry", "Compute", "Containers"),
    ("Functions", "Compute", "Serverless Compute"),
    ("Azure Virtual Desktop", "Compute", "End User Computing"),
    ("Azure App Service", "Web", "Application Platforms"),
    ("Storage", "Storage", "Storage Platforms"),
    ("Backup", "Storage", "Backup Storage"),
    ("Azure NetApp Files", "Storage", "File Storage"),
    ("SQL Database", "Databases", "Relational Databases"),
    ("SQL Managed Instance", "Databases", "Relational Databases"),
    ("Azure Database for PostgreSQL", "Databases", "Relational Databases"),
    ("Azure Database for MySQL", "Databases", "Relational Databases"),
    ("Azure Cosmos DB", "Databases", "NoSQL Databases"),
    ("Redis Cache", "Databases", "Caching"),
    ("Azure Cache for Redis", "Databases", "Caching"),
    ("Azure Synapse Analytics", "Databases", "Data Warehouses"),
    ("Azure Data Explorer", "Analytics", "Analytics Platforms"),
    ("Azure Databricks", "Analytics", "Analytics Platforms"),
    ("Azure Data Factory v2", "Analytics", "Data Processing"),
    ("Stream Analytics", "Analytics", "Streaming Analytics"),
    ("Event Hubs", "Analytics", "Streaming Analytics"),
    ("Azure Cognitive Search", "Analytics", "Search"),
    ("Power BI Embedded", "Analytics", "Business Intelligence"),
    ("Bandwidth", "Networking", "Network Connectivity"),
    ("Virtual Network", "Networking", "Network Infrastructure"),
    ("Load Balancer", "Networking", "Application Networking"),
    ("Application Gateway", "Networking", "Application Networking"),
    ("VPN Gateway", "Networking", "Network Connectivity"),
    ("ExpressRoute", "Networking", "Network Connectivity"),
    ("NAT Gateway", "Networking", "Network Connectivity"),
    ("Azure DNS", "Networking", "Network Routing"),
    ("Azure Front Door Service", "Networking", "Content Delivery"),
    ("Content Delivery Network", "Networking", "Content Delivery"),
    ("Azure Firewall", "Networking", "Network Security"),
    ("Azure Bastion", "Networking", "Network Security"),
    ("Network Watcher", "Networking", "Network Infrastructure"),
    ("Service Bus", "Integration", "Messaging"),
    ("Event Grid", "Integration", "Messaging"),
    ("Logic Apps", "Integration", "Workflow Orchestration"),
    ("API Management", "Integration", "API Management"),
    ("Key Vault", "Security", "Secret Management"),
    ("Microsoft Defender for Cloud", "Security", "Security Posture Management"),
    ("Sentinel", "Security", "Threat Detection and Response"),
    ("Microsoft Entra ID", "Identity", "Identity and Access Management"),
    ("Log Analytics", "Management and Governance", "Observability"),
    ("Azure Monitor", "Management and Governance", "Observability"),
    ("Application Insights", "Management and Governance", "Observability"),
    ("Azure Site Recovery", "Management and Governance", "Disaster Recovery"),
    ("Azure Policy", "Management and Governance", "Compliance"),
    ("Cognitive Services", "AI and Machine Learning", "AI Platforms"),
    ("Azure OpenAI", "AI and Machine Learning", "Generative AI"),
    ("Azure Machine Learning", "AI and Machine Learning", "Machine Learning"),
    ("Azure Bot Service", "AI and Machine Learning", "Bots"),
    ("IoT Hub", "Internet of Things", "IoT Platforms"),
    ("Azure DevOps", "Developer Tools", "Developer Platforms"),
    ("Media Services", "Media", "Media Streaming"),
    ("Azure Migrate", "Migration", "Resource Migration"),
    ("Azure Arc", "Multicloud", "Multicloud Integration"),
)

# GCP: service.description of the Cloud Billing export.
GCP_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("Compute Engine", "Compute", "Virtual Machines"),
    ("Kubernetes Engine", "Compute", "Containers"),
    ("Cloud Run", "Compute", "Serverless Compute"),
    ("Cloud Run Functions", "Compute", "Serverless Compute"),
    ("Cloud Functions", "Compute", "Serverless Compute"),
    ("Artifact Registry", "Compute", "Containers"),
    ("App Engine", "Web", "Application Platforms"),
    ("Cloud Storage", "Storage", "Object Storage"),
    ("Filestore", "Storage", "File Storage"),
    ("Backup and DR Service", "Storage", "Backup Storage"),
    ("Cloud SQL", "Databases", "Relational Databases"),
    ("Cloud Spanner", "Databases", "Relational Databases"),
    ("AlloyDB", "Databases", "Relational Databases"),
    ("Cloud Bigtable", "Databases", "NoSQL Databases"),
    ("Cloud Firestore", "Databases", "NoSQL Databases"),
    ("Cloud Memorystore for Redis", "Databases", "Caching"),
    ("BigQuery", "Databases", "Data Warehouses"),
    ("BigQuery Storage API", "Databases", "Data Warehouses"),
    ("BigQuery Reservation API", "Databases", "Data Warehouses"),
    ("Cloud Dataflow", "Analytics", "Data Processing"),
    ("Cloud Dataproc", "Analytics", "Data Processing"),
    ("Cloud Data Fusion", "Analytics", "Data Processing"),
    ("Cloud Composer", "Integration", "Workflow Orchestration"),
    ("Looker", "Analytics", "Business Intelligence"),
    ("Cloud Pub/Sub", "Integration", "Messaging"),
    ("Cloud Tasks", "Integration", "Messaging"),
    ("Cloud Scheduler", "Integration", "Workflow Orchestration"),
    ("Workflows", "Integration", "Workflow Orchestration"),
    ("Apigee", "Integration", "API Management"),
    ("API Gateway", "Integration", "API Management"),
    ("Networking", "Networking", "Network Infrastructure"),
    ("Cloud DNS", "Networking", "Network Routing"),
    ("Cloud CDN", "Networking", "Content Delivery"),
    ("Cloud Load Balancing", "Networking", "Application Networking"),
    ("Cloud Armor", "Networking", "Network Security"),
    ("Cloud Logging", "Management and Governance", "Observability"),
    ("Cloud Monitoring", "Management and Governance", "Observability"),
    ("Cloud Trace", "Management and Governance", "Observability"),
    ("Support", "Management and Governance", "Support"),
    ("Secret Manager", "Security", "Secret Management"),
    ("Cloud Key Management Service (KMS)", "Security", "Secret Management"),
    ("Security Command Center", "Security", "Security Posture Management"),
    ("Identity Platform", "Identity", "Identity and Access Management"),
    ("Vertex AI", "AI and Machine Learning", "AI Platforms"),
    ("Gemini API", "AI and Machine Learning", "Generative AI"),
    ("Cloud Vision API", "AI and Machine Learning", "Machine Learning"),
    ("Cloud Natural Language", "AI and Machine Learning", "Natural Language Processing"),
    ("Cloud Translation", "AI and Machine Learning", "Natural Language Processing"),
    ("Dialogflow", "AI and Machine Learning", "Bots"),
    ("Cloud Build", "Developer Tools", "Continuous Integration and Deployment"),
    ("Cloud Source Repositories", "Developer Tools", "Source Code Management"),
    ("Firebase", "Mobile", "Other (Mobile)"),
    ("Database Migration Service", "Migration", "Data Migration"),
    ("Anthos", "Multicloud", "Multicloud Integration"),
)

# (provider, unit as the provider reports it, the same unit in FOCUS Unit Format). Units not
# listed pass through unchanged; these are the ones FOCUS spells differently.
UNITS: tuple[tuple[str, str, str], ...] = (
    ("aws", "Hrs", "Hours"),
    ("aws", "GB-Mo", "GB-Months"),
    ("aws", "LCU-Hrs", "LCU-Hours"),
    ("aws", "Lambda-GB-Second", "GB-Seconds"),
    ("aws", "DPU-Hour", "DPU-Hours"),
    ("aws", "ShardHour", "Shard-Hours"),
    ("aws", "Terabytes", "TB"),
    ("gcp", "seconds", "Seconds"),
    ("gcp", "hour", "Hours"),
    ("gcp", "hours", "Hours"),
    ("gcp", "byte-seconds", "B-Seconds"),
    ("gcp", "bytes", "B"),
    ("gcp", "gibibyte", "GiB"),
    ("gcp", "gibibyte hour", "GiB-Hours"),
    ("gcp", "gibibyte month", "GiB-Months"),
    ("gcp", "tebibyte", "TiB"),
    ("gcp", "mebibyte", "MiB"),
    ("gcp", "requests", "Requests"),
    ("gcp", "count", "Count"),
)

SERVICE_MAPPINGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "aws": AWS_SERVICES,
    "azure": AZURE_SERVICES,
    "gcp": GCP_SERVICES,
}

# One row per cost_data row. How each FOCUS column is filled, and why:
#
# - BilledCost = unblended_cost: what the invoice charges for the line.
# - EffectiveCost = amortized_cost (Cost Explorer's AmortizedCost: commitment fees spread onto the
#   usage they cover), except 0 on Purchase rows: FOCUS requires it (EffectiveCost-C-005) because
#   a commitment fee reaches EffectiveCost through the usage it covers. The row's own amortized
#   amount (what Cost Explorer did not spread, e.g. unused commitment) stays in x_AmortizedCost.
# - ListCost = ContractedCost = BilledCost. Cost Explorer exposes neither public on-demand nor
#   negotiated prices at this grain; unblended cost is the on-demand rate for usage (negotiated
#   discounts arrive as their own negative lines), and for credits and tax FOCUS requires both
#   to equal BilledCost (ListCost-C-008, ContractedCost-C-008).
# - ChargeCategory: Tax for the Tax service, Credit for credit and refund lines (amounts the
#   provider grants back, with no usage quantity), Purchase for commitment fees (Savings Plans,
#   Reserved Instance "HeavyUsage" fees), Usage otherwise.
# - ChargeClass is always NULL: nothing in Cost Explorer's answer says that a line corrects an
#   already invoiced billing period (AWS's own FOCUS export lists the same gap).
# - PricingQuantity/Unit = usage_quantity/usage_unit on Usage and Purchase rows, and
#   ConsumedQuantity/Unit on Usage rows, where the provider gave a unit; NULL otherwise, as FOCUS
#   requires for Tax, credits and purchases (consumed) and allows for the rest. Units are spelled
#   as FOCUS's Unit Format wants through focus_units (Hrs -> Hours, GB-Mo -> GB-Months).
# - BillingAccountId/Name and SubAccountId/Name = the registered account. Until management
#   (payer) accounts are linked to their members, an account is its own billing account.
#   Accounts removed without --purge keep their rows; their BillingAccountId falls back to our
#   account id, so it is never NULL.
# - BillingPeriodStart/End: the UTC calendar month of the day (all three providers bill
#   calendar months); ChargePeriodStart/End: the UTC day. End bounds are exclusive.
# - ProviderName = PublisherName = InvoiceIssuerName: the cloud itself. cost_data carries no
#   marketplace seller or reseller. FOCUS 1.3 renames ProviderName to ServiceProviderName and
#   PublisherName to HostProviderName (for cloud services both are the cloud), alongside
#   InvoiceIssuerName; add those two names when the view moves to 1.3.
# - Not filled, so not present: ListUnitPrice, ContractedUnitPrice, Sku*, Region*,
#   AvailabilityZone, Resource*, Tags, InvoiceId, CommitmentDiscount*, CapacityReservation*:
#   Cost Explorer's two GroupBy slots hold SERVICE and USAGE_TYPE, so none of these is known.
# - x_ columns (FOCUS's prefix for custom columns) carry what FOCUS has no place for.
#   x_UsageDate is the plain day, for range filters that can use cost_data's index.
_FOCUS_VIEW = """
CREATE VIEW cost_data_focus WITH (security_invoker = true) AS
SELECT
    c.unblended_cost AS "BilledCost",
    COALESCE(a.provider_account_id, c.cloud_account_id::text) AS "BillingAccountId",
    a.name AS "BillingAccountName",
    c.currency AS "BillingCurrency",
    (date_trunc('month', c.date::timestamp) + interval '1 month') AT TIME ZONE 'UTC'
        AS "BillingPeriodEnd",
    date_trunc('month', c.date::timestamp) AT TIME ZONE 'UTC' AS "BillingPeriodStart",
    charge.category AS "ChargeCategory",
    NULL::text AS "ChargeClass",
    NULLIF(c.usage_type, '(unspecified)') AS "ChargeDescription",
    CASE charge.category
        WHEN 'Usage' THEN 'Usage-Based'
        WHEN 'Purchase' THEN
            CASE WHEN c.usage_type LIKE '%AllUpfront%' THEN 'One-Time' ELSE 'Recurring' END
        WHEN 'Tax' THEN 'Recurring'
        ELSE 'One-Time'
    END AS "ChargeFrequency",
    (c.date + 1)::timestamp AT TIME ZONE 'UTC' AS "ChargePeriodEnd",
    c.date::timestamp AT TIME ZONE 'UTC' AS "ChargePeriodStart",
    CASE WHEN charge.consumed THEN c.usage_quantity END AS "ConsumedQuantity",
    CASE WHEN charge.consumed THEN charge.unit END AS "ConsumedUnit",
    c.unblended_cost AS "ContractedCost",
    CASE WHEN charge.category = 'Purchase' THEN 0::numeric ELSE c.amortized_cost END
        AS "EffectiveCost",
    charge.provider_name AS "InvoiceIssuerName",
    c.unblended_cost AS "ListCost",
    CASE WHEN charge.priced THEN c.usage_quantity END AS "PricingQuantity",
    CASE WHEN charge.priced THEN charge.unit END AS "PricingUnit",
    charge.provider_name AS "ProviderName",
    charge.provider_name AS "PublisherName",
    COALESCE(s.service_category, 'Other') AS "ServiceCategory",
    c.service AS "ServiceName",
    COALESCE(s.service_subcategory, 'Other (Other)') AS "ServiceSubcategory",
    a.provider_account_id AS "SubAccountId",
    CASE WHEN a.provider_account_id IS NOT NULL THEN a.name END AS "SubAccountName",
    c.tenant_id AS "x_TenantId",
    c.cloud_account_id AS "x_CloudAccountId",
    c.provider AS "x_Provider",
    c.usage_type AS "x_UsageType",
    c.amortized_cost AS "x_AmortizedCost",
    c.net_unblended_cost AS "x_NetUnblendedCost",
    c.is_estimated AS "x_IsEstimated",
    c.date AS "x_UsageDate"
FROM cost_data AS c
LEFT JOIN cloud_accounts AS a
    ON a.id = c.cloud_account_id AND a.tenant_id = c.tenant_id
LEFT JOIN focus_service_categories AS s
    ON s.provider = c.provider AND s.service_name = c.service
LEFT JOIN focus_units AS u
    ON u.provider = c.provider AND u.unit = c.usage_unit
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN c.service = 'Tax' OR c.usage_type = 'Tax' THEN 'Tax'
        WHEN c.provider = 'aws'
            AND (c.usage_type LIKE 'Credit%' OR c.usage_type LIKE 'Refund%') THEN 'Credit'
        WHEN c.provider = 'aws'
            AND (c.service LIKE 'Savings Plans for %' OR c.usage_type LIKE '%HeavyUsage%')
            THEN 'Purchase'
        ELSE 'Usage'
    END AS category
) AS kind
CROSS JOIN LATERAL (
    SELECT
        kind.category,
        COALESCE(u.focus_unit, c.usage_unit) AS unit,
        kind.category IN ('Usage', 'Purchase') AND c.usage_unit IS NOT NULL AS priced,
        kind.category = 'Usage' AND c.usage_unit IS NOT NULL AS consumed,
        CASE c.provider
            WHEN 'aws' THEN 'AWS'
            WHEN 'azure' THEN 'Microsoft'
            WHEN 'gcp' THEN 'Google Cloud'
            ELSE c.provider
        END AS provider_name
) AS charge
"""


def _grant_reporting_to_pipeline() -> None:
    # Granting a role needs its ADMIN option (or CREATEROLE); without it the view still works
    # for dashboards, and `finops export focus` says which GRANT to run.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT pg_has_role('{PIPELINE_ROLE}', '{REPORTING_ROLE}', 'MEMBER') THEN
                BEGIN
                    GRANT {REPORTING_ROLE} TO {PIPELINE_ROLE};
                EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
                    RAISE WARNING 'could not GRANT {REPORTING_ROLE} TO {PIPELINE_ROLE}; '
                        'tenant exports need it (run it as a superuser)';
                END;
            END IF;
        END
        $$
        """
    )


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE focus_service_subcategories (
            service_subcategory text PRIMARY KEY,
            service_category text NOT NULL,
            UNIQUE (service_category, service_subcategory)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE focus_service_categories (
            provider text NOT NULL,
            service_name text NOT NULL,
            service_category text NOT NULL,
            service_subcategory text NOT NULL,
            PRIMARY KEY (provider, service_name),
            FOREIGN KEY (service_category, service_subcategory)
                REFERENCES focus_service_subcategories (service_category, service_subcategory)
        )
        """
    )
    subcategories = sa.table(
        "focus_service_subcategories",
        sa.column("service_subcategory", sa.Text),
        sa.column("service_category", sa.Text),
    )
    op.bulk_insert(
        subcategories,
        [
            {"service_subcategory": subcategory, "service_category": category}
            for category, names in SERVICE_SUBCATEGORIES.items()
            for subcategory in names
        ],
    )
    categories = sa.table(
        "focus_service_categories",
        sa.column("provider", sa.Text),
        sa.column("service_name", sa.Text),
        sa.column("service_category", sa.Text),
        sa.column("service_subcategory", sa.Text),
    )
    op.bulk_insert(
        categories,
        [
            {
                "provider": provider,
                "service_name": name,
                "service_category": category,
                "service_subcategory": subcategory,
            }
            for provider, services in SERVICE_MAPPINGS.items()
            for name, category, subcategory in services
        ],
    )
    op.execute(
        """
        CREATE TABLE focus_units (
            provider text NOT NULL,
            unit text NOT NULL,
            focus_unit text NOT NULL,
            PRIMARY KEY (provider, unit)
        )
        """
    )
    units = sa.table(
        "focus_units",
        sa.column("provider", sa.Text),
        sa.column("unit", sa.Text),
        sa.column("focus_unit", sa.Text),
    )
    op.bulk_insert(
        units,
        [
            {"provider": provider, "unit": unit, "focus_unit": focus_unit}
            for provider, unit, focus_unit in UNITS
        ],
    )
    op.execute(_FOCUS_VIEW)
    _grant_reporting_to_pipeline()
    for relation in _RELATIONS:
        op.execute(f"GRANT SELECT ON {relation} TO {PIPELINE_ROLE}, {REPORTING_ROLE}")


def downgrade() -> None:
    op.execute("DROP VIEW cost_data_focus")
    op.execute("DROP TABLE focus_units")
    op.execute("DROP TABLE focus_service_categories")
    op.execute("DROP TABLE focus_service_subcategories")
    # The role grant stays: roles are cluster-wide and other databases may rely on it.
