"""Azure's credential kind: an Entra ID app registration's client secret.

The tenant and client ids are identifiers, not secrets, but they are stored inside the
encrypted payload with the secret: the three only work together. An account on a sovereign
cloud (or the sandbox) also names its Entra authority host here, since the secret is only
valid against that authority.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from finops_pipeline.errors import CredentialError
from finops_pipeline.providers.azure.errors import AzureConfigurationError
from finops_pipeline.security.credentials import (
    Secret,
    malformed_credentials,
    payload_field,
    require_secret,
)

__all__ = ["AzureClientSecretCredentials", "is_guid"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: object) -> bool:
    """Whether ``value`` is a GUID string such as Entra and Azure ids are."""
    return isinstance(value, str) and bool(_GUID.match(value))


@dataclass(frozen=True, repr=False)
class AzureClientSecretCredentials:
    """An app registration's client secret; the secret stays masked in reprs.

    Attributes:
        tenant_id: The Entra (directory) tenant id the app lives in, a GUID.
        client_id: The app registration's application (client) id, a GUID.
        client_secret: The client secret's value.
        authority_host: The Entra authority, ``https://host``; None for the public cloud.
    """

    KIND: ClassVar[str] = "azure_client_secret"

    tenant_id: str
    client_id: str
    client_secret: Secret
    authority_host: str | None = None

    def __post_init__(self) -> None:
        """Refuse ids that are not GUIDs and a secret that is not a non-empty Secret."""
        for name in ("tenant_id", "client_id"):
            if not is_guid(getattr(self, name)):
                raise AzureConfigurationError(
                    f"The Azure {name.replace('_', ' ')} must be a GUID (Entra admin center > "
                    "App registrations > Overview)."
                )
        try:
            require_secret(type(self).__name__, "client_secret", self.client_secret)
        except CredentialError:
            raise AzureConfigurationError("The Azure client secret is empty.") from None
        if self.authority_host is not None and not (
            isinstance(self.authority_host, str) and self.authority_host.startswith("https://")
        ):
            raise AzureConfigurationError(
                "The Entra authority host must be an https URL such as "
                "https://login.microsoftonline.us."
            )

    @property
    def kind(self) -> str:
        """The credential kind, ``"azure_client_secret"``."""
        return self.KIND

    def to_payload(self) -> dict[str, str]:
        """The fields to encrypt."""
        payload = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret.reveal(),
        }
        if self.authority_host is not None:
            payload["authority_host"] = self.authority_host
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AzureClientSecretCredentials:
        """Rebuild from :meth:`to_payload`'s fields."""
        tenant_id = str(payload_field(payload, "tenant_id"))
        client_id = str(payload_field(payload, "client_id"))
        secret = str(payload_field(payload, "client_secret"))
        authority_host = payload_field(payload, "authority_host", required=False)
        try:
            return cls(
                tenant_id=tenant_id,
                client_id=client_id,
                client_secret=Secret(secret),
                authority_host=authority_host,
            )
        except AzureConfigurationError:
            # The message would describe input; for a stored payload, say it is malformed.
            raise malformed_credentials("an Azure id or the authority host is invalid") from None

    def secrets(self) -> tuple[Secret, ...]:
        """The client secret."""
        return (self.client_secret,)

    def __repr__(self) -> str:
        """Show the ids (not secret) and a masked client secret."""
        return (
            f"{type(self).__name__}(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"client_secret={self.client_secret!r}, authority_host={self.authority_host!r})"
        )
