"""AWS's credential kinds: an access key, or a role the pipeline assumes with an external id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from finops_pipeline.security.credentials import (
    Secret,
    mask_identifier,
    payload_field,
    require_secret,
    require_str,
)

__all__ = ["AwsAccessKeyCredentials", "AwsRoleCredentials"]


@dataclass(frozen=True, repr=False)
class AwsAccessKeyCredentials:
    """A long-lived (or STS session) AWS access key.

    Attributes:
        access_key_id: The access key id, e.g. ``AKIA...``. Shown masked in the repr.
        secret_access_key: The secret access key.
        session_token: The STS session token, for temporary credentials.
    """

    KIND: ClassVar[str] = "aws_access_key"

    access_key_id: str
    secret_access_key: Secret
    session_token: Secret | None = None

    def __post_init__(self) -> None:
        """Validate field types so raw strings never sit where a Secret belongs."""
        owner = type(self).__name__
        require_str(owner, "access_key_id", self.access_key_id)
        require_secret(owner, "secret_access_key", self.secret_access_key)
        if self.session_token is not None:
            require_secret(owner, "session_token", self.session_token)

    @property
    def kind(self) -> str:
        """The credential kind, ``"aws_access_key"``."""
        return self.KIND

    def to_payload(self) -> dict[str, str]:
        """The fields to encrypt."""
        payload = {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key.reveal(),
        }
        if self.session_token is not None:
            payload["session_token"] = self.session_token.reveal()
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AwsAccessKeyCredentials:
        """Rebuild from :meth:`to_payload`'s fields."""
        token = payload_field(payload, "session_token", required=False)
        return cls(
            access_key_id=str(payload_field(payload, "access_key_id")),
            secret_access_key=Secret(str(payload_field(payload, "secret_access_key"))),
            session_token=None if token is None else Secret(token),
        )

    def secrets(self) -> tuple[Secret, ...]:
        """The secret key, and the session token if any."""
        if self.session_token is None:
            return (self.secret_access_key,)
        return (self.secret_access_key, self.session_token)

    def __repr__(self) -> str:
        """Show a masked access key id and no secret."""
        token = "None" if self.session_token is None else repr(self.session_token)
        return (
            f"{type(self).__name__}(access_key_id='{mask_identifier(self.access_key_id)}', "
            f"secret_access_key={self.secret_access_key!r}, session_token={token})"
        )


@dataclass(frozen=True, repr=False)
class AwsRoleCredentials:
    """An IAM role the pipeline assumes, protected by an external id.

    Attributes:
        role_arn: The role's ARN. Not secret, shown in the repr.
        external_id: The STS external id agreed with the account owner.
    """

    KIND: ClassVar[str] = "aws_role"

    role_arn: str
    external_id: Secret

    def __post_init__(self) -> None:
        """Validate field types so raw strings never sit where a Secret belongs."""
        owner = type(self).__name__
        require_str(owner, "role_arn", self.role_arn)
        require_secret(owner, "external_id", self.external_id)

    @property
    def kind(self) -> str:
        """The credential kind, ``"aws_role"``."""
        return self.KIND

    def to_payload(self) -> dict[str, str]:
        """The fields to encrypt."""
        return {"role_arn": self.role_arn, "external_id": self.external_id.reveal()}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AwsRoleCredentials:
        """Rebuild from :meth:`to_payload`'s fields."""
        return cls(
            role_arn=str(payload_field(payload, "role_arn")),
            external_id=Secret(str(payload_field(payload, "external_id"))),
        )

    def secrets(self) -> tuple[Secret, ...]:
        """The external id."""
        return (self.external_id,)

    def __repr__(self) -> str:
        """Show the role ARN and a masked external id."""
        return (
            f"{type(self).__name__}(role_arn={self.role_arn!r}, external_id={self.external_id!r})"
        )
