"""The provider registry: one :class:`ProviderSpec` per cloud the pipeline collects from.

Adding a cloud is its package under ``finops_pipeline/providers/``, one line in
``_REGISTERED`` naming the module that defines its spec, and one resource. Specs load lazily,
so importing a provider's client never drags in every other provider (or a sandbox).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from finops_pipeline.errors import UnsupportedProviderError

if TYPE_CHECKING:
    # Kept out of the import itself: the CLI lists provider names without loading any provider.
    from finops_pipeline.providers.base import ProviderSpec

# provider name -> "module:attribute" of its ProviderSpec
_REGISTERED: dict[str, str] = {
    "aws": "finops_pipeline.providers.aws.spec:AWS",
}

__all__ = ["provider_names", "provider_spec"]


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
