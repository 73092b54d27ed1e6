"""GCP's credential kind: a service-account JSON key and the billing export it reads.

The whole key file is encrypted, and with it the export's definition (table, location, job
project, API and token endpoints). They travel together because the key is only granted on
that export, and a row must not be pointed at another table or token endpoint by anyone who
can write to ``cloud_accounts``: the definition is bound into the same AEAD ciphertext. Every
project of one export is its own ``cloud_accounts`` row (``provider_account_id`` = project id)
holding the same payload, encrypted and bound to that row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.gcp.client import DEFAULT_MAXIMUM_BYTES_BILLED, BillingExport
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.providers.gcp.table import BillingExportTable
from finops_pipeline.security.credentials import (
    Secret,
    malformed_credentials,
    payload_field,
)

__all__ = ["ExportKey", "GcpServiceAccountCredentials"]

#: What identifies one billing export read with one key: projects with the same export key
#: (and tenant) share queries.
ExportKey = tuple[str, str, str | None, str | None, str | None, str]


@dataclass(frozen=True, repr=False)
class GcpServiceAccountCredentials:
    """A service-account key and the billing export table it may read.

    Attributes:
        key: The whole JSON key (only ``client_email`` and ``project_id`` are ever shown).
        table: The export table, ``project.dataset.table`` (checked strictly).
        location: The export dataset's BigQuery location (``US``, ``EU``, ``europe-west1``...).
        job_project: The project query jobs run in; None for the table's project.
        api_endpoint: A BigQuery API endpoint replacing ``https://bigquery.googleapis.com``.
        token_endpoint: An OAuth token endpoint replacing the key's ``token_uri``.
    """

    KIND: ClassVar[str] = "gcp_service_account"

    key: ServiceAccountKey
    table: str
    location: str
    job_project: str | None = None
    api_endpoint: str | None = None
    token_endpoint: str | None = None

    def __post_init__(self) -> None:
        """Validate the export definition now, so a bad one is never stored."""
        if not isinstance(self.key, ServiceAccountKey):
            raise TypeError(f"key must be a ServiceAccountKey, not {type(self.key).__name__}")
        self.billing_export()

    @property
    def kind(self) -> str:
        """The credential kind, ``"gcp_service_account"``."""
        return self.KIND

    def billing_export(
        self, maximum_bytes_billed: int = DEFAULT_MAXIMUM_BYTES_BILLED
    ) -> BillingExport:
        """The export these credentials read, with the deployment's bytes cap."""
        return BillingExport(
            table=BillingExportTable.parse(self.table),
            location=self.location,
            job_project=self.job_project,
            api_endpoint=self.api_endpoint,
            token_uri=self.token_endpoint,
            maximum_bytes_billed=maximum_bytes_billed,
        )

    @property
    def export_key(self) -> ExportKey:
        """Projects whose credentials share this key read the same export with the same key.

        The key's part is a digest of the whole key file, not its e-mail: two keys of one
        service account (one of them revoked, say) must never share a client or a result.
        """
        digest = hashlib.sha256(self.key.key_json.reveal().encode("utf-8")).hexdigest()
        return (
            self.table,
            self.location,
            self.job_project,
            self.api_endpoint,
            self.token_endpoint,
            digest,
        )

    def to_payload(self) -> dict[str, str]:
        """The fields to encrypt: the whole key file and the export definition."""
        payload = {
            "service_account_json": self.key.key_json.reveal(),
            "table": self.table,
            "location": self.location,
        }
        for name in ("job_project", "api_endpoint", "token_endpoint"):
            value = getattr(self, name)
            if value is not None:
                payload[name] = value
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GcpServiceAccountCredentials:
        """Rebuild from :meth:`to_payload`'s fields."""
        try:
            return cls(
                key=ServiceAccountKey.from_json(
                    str(payload_field(payload, "service_account_json"))
                ),
                table=str(payload_field(payload, "table")),
                location=str(payload_field(payload, "location")),
                job_project=payload_field(payload, "job_project", required=False),
                api_endpoint=payload_field(payload, "api_endpoint", required=False),
                token_endpoint=payload_field(payload, "token_endpoint", required=False),
            )
        except FinopsError as error:
            if "malformed" in str(error):
                raise
            # The key or the export definition no longer passes the checks it passed when
            # stored; the message names fields, never values.
            raise malformed_credentials(
                f"the service-account key or the export definition fails its checks "
                f"({type(error).__name__})"
            ) from None

    def secrets(self) -> tuple[Secret, ...]:
        """The whole JSON, the private key (and its PEM lines) and the key id."""
        return self.key.secret_values()

    def __repr__(self) -> str:
        """Show who and which table; never the key."""
        return (
            f"{type(self).__name__}(key={self.key!r}, table={self.table!r}, "
            f"location={self.location!r})"
        )

    __str__ = __repr__
