"""The provider registry: one :class:`ProviderSpec` per cloud the pipeline collects from.

Adding a cloud is its package under ``finops_pipeline/providers/``, one line in
``_REGISTERED`` naming the module that defines its spec, and one resource. Specs load lazily,
so importing a provider's client never drags in every other provider (or a sandbox).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from finops_pipeline.errors import (
    FinopsError,
    UnsupportedProviderError,
    typed_database_or_network_error,
)

if TYPE_CHECKING:
    # Kept out of the import itself: the CLI lists provider names without loading any provider.
    from finops_pipeline.providers.base import ProviderSpec
    from finops_pipeline.security.credentials import Credentials

# provider name -> "module:attribute" of its ProviderSpec
_REGISTERED: dict[str, str] = {
    "aws": "finops_pipeline.providers.aws.spec:AWS",
    "azure": "finops_pipeline.providers.azure.spec:AZURE",
    "gcp": "finops_pipeline.providers.gcp.spec:GCP",
}

__all__ = [
    "credential_class",
    "credential_kinds",
    "provider_names",
    "provider_spec",
    "provider_specs",
    "typed_error",
]


def provider_names() -> tuple[str, ...]:
    """The providers accounts can be onboarded for, sorted."""
    return tuple(sorted(_REGISTERED))


def provider_spec(name: str) -> ProviderSpec:
    """The registered spec of ``name``.

    Raises:
        UnsupportedProviderError: No such provider is registered.
    """
    target = _REGISTERED.get(name)
    if target is None:
        names = ", ".join(repr(known) for known in provider_names())
        raise UnsupportedProviderError(
            f"Provider {name!r} has no cost collector yet; only {names} accounts can be onboarded."
        )
    module_name, _, attribute = target.partition(":")
    spec: ProviderSpec = getattr(importlib.import_module(module_name), attribute)
    return spec


def provider_specs() -> tuple[ProviderSpec, ...]:
    """Every registered spec, in name order (loads every provider's spec module)."""
    return tuple(provider_spec(name) for name in provider_names())


def credential_kinds() -> tuple[str, ...]:
    """Every credential kind any registered provider stores, sorted."""
    return tuple(sorted(kind for spec in provider_specs() for kind in spec.credential_kinds))


def credential_class(kind: str) -> type[Credentials] | None:
    """The credential class stored under ``kind``, or None when no provider registers it."""
    for spec in provider_specs():
        for cls in spec.credential_classes:
            if kind == cls.KIND:
                return cls
    return None


def typed_error(error: BaseException) -> FinopsError | None:
    """The typed error for any error the pipeline may meet: its own, a registered provider's SDK
    error (each spec's ``translate_error``), a database or a network error; None otherwise."""
    if isinstance(error, FinopsError):
        return error
    for spec in provider_specs():
        if spec.translate_error is not None:
            typed = spec.translate_error(error)
            if typed is not None:
                return typed
    return typed_database_or_network_error(error)
