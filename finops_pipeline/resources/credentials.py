"""The credential decryptor resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import (
    Credentials,
    open_credentials,
)
from finops_pipeline.security.keys import load_key_ring
from finops_pipeline.security.redaction import install_redaction


class CredentialDecryptor(dg.ConfigurableResource):
    """Decrypts ``cloud_accounts`` credentials (AES-256-GCM) inside the run that uses them.

    Bind the keys with ``dg.EnvVar`` so the UI shows only the variable names. Decrypted values
    are registered with the log redactor and never leave the run's memory.
    """

    encryption_key: str | None = Field(
        default=None, repr=False, description="Current key; bind dg.EnvVar('ENCRYPTION_KEY')."
    )
    previous_keys: str | None = Field(
        default=None,
        repr=False,
        description="Older keys still accepted; bind dg.EnvVar('ENCRYPTION_KEYS_PREVIOUS').",
    )

    _ring: KeyRing | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The redaction backstop must be on in every run process, not only under the CLI.
        install_redaction()
        self._ring = load_key_ring(self.encryption_key, self.previous_keys)

    @property
    def key_ring(self) -> KeyRing:
        if self._ring is None:
            self._ring = load_key_ring(self.encryption_key, self.previous_keys)
        return self._ring

    def decrypt_credentials(self, account: CloudAccount) -> Credentials:
        """The account's credentials; raises a typed ``CredentialError`` on any mismatch."""
        return open_credentials(account, self.key_ring)
