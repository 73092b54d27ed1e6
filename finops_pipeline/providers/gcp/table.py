"""The billing export table: its name, checked strictly, and its partitioning.

A table name cannot be a query parameter, so it is spliced into the SQL. It is therefore
accepted only in the strict ``project.dataset.table`` form below, and written back between
backticks from its three validated parts, never from the text the user typed.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from finops_pipeline.providers.gcp.errors import BillingExportSettingError, BillingTableNameError

# Project ids: 6–30 lower-case letters, digits and hyphens, starting with a letter and not
# ending with a hyphen. Older projects may be domain-scoped ("example.com:my-project").
_PROJECT = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"
# Dataset ids: letters, digits and underscores. Table ids may also hold hyphens (billing
# account ids do); BigQuery allows more Unicode, but no billing export table needs it.
_DATASET = r"[A-Za-z0-9_]{1,1024}"
_TABLE = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,1023}"
_TABLE_NAME = re.compile(rf"(?P<project>{_PROJECT})\.(?P<dataset>{_DATASET})\.(?P<table>{_TABLE})")
_PROJECT_ID = re.compile(_PROJECT)
# BigQuery locations: multi-regions ("US", "EU") and regions ("europe-west1", "us-east4").
_LOCATION = re.compile(r"[A-Za-z]{2,20}(?:-[a-z]{2,20}[0-9]{0,2})?")
STANDARD_TABLE_PREFIX = "gcp_billing_export_v1_"
DETAILED_TABLE_PREFIX = "gcp_billing_export_resource_v1_"


@dataclass(frozen=True)
class BillingExportTable:
    """A validated ``project.dataset.table`` name."""

    project: str
    dataset: str
    table: str

    @classmethod
    def parse(cls, name: str) -> BillingExportTable:
        """Validate ``project.dataset.table``.

        Raises:
            BillingTableNameError: anything else (quotes, spaces, comments, missing parts...).
        """
        if not isinstance(name, str):
            raise BillingTableNameError("The billing export table name must be text.")
        match = _TABLE_NAME.fullmatch(name)
        if match is None:
            raise BillingTableNameError(
                "The billing export table must be written project.dataset.table (for example "
                "my-project.billing.gcp_billing_export_v1_012345_6789AB_CDEF01), using only "
                "letters, digits, '-', '_' and the two dots; the name given was refused."
            )
        return cls(match["project"], match["dataset"], match["table"])

    @property
    def full_name(self) -> str:
        """``project.dataset.table``."""
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def sql_reference(self) -> str:
        """The table as written in a GoogleSQL FROM clause, quoted with backticks."""
        return f"`{self.project}.{self.dataset}.{self.table}`"

    @property
    def billing_account_hint(self) -> str | None:
        """The billing account id a standard or detailed export table is named after."""
        for prefix in (DETAILED_TABLE_PREFIX, STANDARD_TABLE_PREFIX):
            if self.table.startswith(prefix):
                return self.table[len(prefix) :].replace("_", "-") or None
        return None

    def __str__(self) -> str:
        return self.full_name


def validate_project_id(project_id: str) -> str:
    """A GCP project id, checked; project ids also travel as query parameters."""
    if not isinstance(project_id, str) or _PROJECT_ID.fullmatch(project_id) is None:
        raise BillingExportSettingError(
            "A GCP project id is 6-30 lower-case letters, digits or hyphens, starting with a "
            "letter (as shown by `gcloud projects list`); the value given was refused."
        )
    return project_id


def validate_location(location: str) -> str:
    """A BigQuery location such as ``US``, ``EU`` or ``europe-west1``."""
    if not isinstance(location, str) or _LOCATION.fullmatch(location) is None:
        raise BillingExportSettingError(
            "The BigQuery location must be the export dataset's location, such as US, EU or "
            "europe-west1; the value given was refused."
        )
    return location


class PartitionKind(enum.Enum):
    """How the export table is partitioned, as ``tables.get`` reports it."""

    #: ``timePartitioning`` without a ``field``: rows sit in the partition of their load time,
    #: named by the ``_PARTITIONTIME`` pseudo-column.
    INGESTION_TIME = "ingestion_time"
    #: ``timePartitioning`` on a TIMESTAMP or DATE column.
    TIME_COLUMN = "time_column"
    #: ``rangePartitioning`` on an integer column.
    INTEGER_RANGE = "integer_range"
    UNPARTITIONED = "unpartitioned"


_GRANULARITIES = ("HOUR", "DAY", "MONTH", "YEAR")


@dataclass(frozen=True)
class TablePartitioning:
    """The partitioning of one table."""

    kind: PartitionKind
    #: HOUR, DAY, MONTH or YEAR for time partitioning.
    granularity: str | None = None
    #: The partitioning column, for column partitioning.
    field: str | None = None
    #: Queries without a filter on the partitioning column are refused by BigQuery.
    require_partition_filter: bool = False

    @classmethod
    def from_table_resource(cls, resource: Mapping[str, Any]) -> TablePartitioning:
        """Read the partitioning from a ``tables.get`` resource (REST JSON)."""
        require = bool(resource.get("requirePartitionFilter")) or bool(
            (resource.get("timePartitioning") or {}).get("requirePartitionFilter")
        )
        time_partitioning = resource.get("timePartitioning")
        if isinstance(time_partitioning, Mapping):
            granularity = str(time_partitioning.get("type") or "DAY").upper()
            if granularity not in _GRANULARITIES:
                granularity = "DAY"
            field = time_partitioning.get("field")
            if field:
                return cls(PartitionKind.TIME_COLUMN, granularity, str(field), require)
            return cls(PartitionKind.INGESTION_TIME, granularity, None, require)
        range_partitioning = resource.get("rangePartitioning")
        if isinstance(range_partitioning, Mapping):
            field = range_partitioning.get("field")
            return cls(PartitionKind.INTEGER_RANGE, None, str(field) if field else None, require)
        return cls(PartitionKind.UNPARTITIONED)

    def partition_floor(self, day: dt.date) -> dt.datetime:
        """The start (UTC) of the partition that holds rows loaded on ``day``.

        A lower bound on the partition time must be truncated to the partition's size: rows
        loaded on 15 January sit in the partition of 1 January when partitions are monthly.
        """
        if self.granularity == "MONTH":
            day = day.replace(day=1)
        elif self.granularity == "YEAR":
            day = day.replace(month=1, day=1)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

    def describe(self) -> str:
        """A short phrase for notes and errors."""
        if self.kind is PartitionKind.INGESTION_TIME:
            return f"ingestion-time partitioned by {self.granularity}"
        if self.kind is PartitionKind.TIME_COLUMN:
            return f"partitioned by {self.granularity} on column {self.field}"
        if self.kind is PartitionKind.INTEGER_RANGE:
            return f"integer-range partitioned on column {self.field}"
        return "not partitioned"
