"""A service-account JSON key whose private parts never show in reprs, errors or logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from finops_pipeline.providers.gcp.errors import ServiceAccountKeyError
from finops_pipeline.security.credentials import MASK, Secret

_REQUIRED_FIELDS = ("type", "client_email", "private_key")
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"


def _refused(detail: str) -> ServiceAccountKeyError:
    return ServiceAccountKeyError(
        f"The service-account key is not usable: {detail}. Create a JSON key for the service "
        "account (IAM > Service accounts > Keys) and enter the whole file."
    )


@dataclass(frozen=True, repr=False)
class ServiceAccountKey:
    """A Google service-account JSON key file.

    The whole JSON is kept as a :class:`Secret` (it is what gets encrypted); ``client_email``
    and ``project_id`` are not secret and are shown. ``private_key`` and ``private_key_id``
    never are.
    """

    KIND: ClassVar[str] = "gcp_service_account"

    client_email: str
    project_id: str | None
    key_json: Secret

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceAccountKey:
        """Parse and check a key file's text.

        Raises:
            ServiceAccountKeyError: not JSON, not a service-account key, or a field missing.
                The message names fields, never values.
        """
        try:
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            payload = json.loads(text)
        except (UnicodeDecodeError, ValueError, TypeError):
            # `from None`: the decoder's message can quote the key text.
            raise _refused("it is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _refused("it is not a JSON object")
        missing = [name for name in _REQUIRED_FIELDS if not isinstance(payload.get(name), str)]
        if missing:
            raise _refused(f"the field(s) {', '.join(missing)} are missing")
        if payload["type"] != "service_account":
            raise _refused(
                "its 'type' is not 'service_account' (user and external-account keys are not "
                "accepted)"
            )
        if "PRIVATE KEY-----" not in payload["private_key"]:
            raise _refused("its 'private_key' is not a PEM private key")
        project_id = payload.get("project_id")
        return cls(
            client_email=payload["client_email"],
            project_id=project_id if isinstance(project_id, str) else None,
            key_json=Secret(json.dumps(payload, sort_keys=True, separators=(",", ":"))),
        )

    @property
    def kind(self) -> str:
        return self.KIND

    def secret_values(self) -> tuple[Secret, ...]:
        """The values to register with log redaction: the whole JSON, the key and its id."""
        info = json.loads(self.key_json.reveal())
        values = [self.key_json, Secret(info["private_key"])]
        # The PEM body's lines are what a partial leak would show.
        values.extend(
            Secret(line)
            for line in info["private_key"].splitlines()
            if line and "-----" not in line
        )
        if isinstance(info.get("private_key_id"), str) and info["private_key_id"]:
            values.append(Secret(info["private_key_id"]))
        return tuple(values)

    def service_account_info(self, *, token_uri: str | None = None) -> dict[str, Any]:
        """The key as google-auth's ``from_service_account_info`` takes it. Contains the key:
        pass it straight to google-auth and keep it out of logs.
        """
        info: dict[str, Any] = json.loads(self.key_json.reveal())
        if token_uri is not None:
            info["token_uri"] = token_uri
        elif not info.get("token_uri"):
            info["token_uri"] = DEFAULT_TOKEN_URI
        return info

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_email={self.client_email!r}, "
            f"project_id={self.project_id!r}, key_json=Secret('{MASK}'))"
        )

    __str__ = __repr__
