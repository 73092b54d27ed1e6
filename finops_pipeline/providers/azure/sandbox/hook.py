"""Binding the sandbox tenant to clients built for its reserved endpoint, in any process.

The registry's Azure hook (``providers/azure/spec.py``) calls :func:`attach_sandbox` with a
client's options before the client is built; the production client never imports this module.
Settings come from environment variables, so Dagster run workers, the CLI and tests agree:

* ``FINOPS_SANDBOX_SEED``, ``FINOPS_SANDBOX_AS_OF`` and the pull generation are shared with the
  AWS sandbox (``finops demo`` advances the generation, so both clouds restate together);
* ``FINOPS_AZURE_SANDBOX_PAGE_SIZE`` and ``FINOPS_AZURE_SANDBOX_THROTTLE_RATE`` are Azure's own.

One sandbox serves a whole process, so its counters add up over every client a run builds.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from typing import Any

from finops_pipeline.providers.aws.sandbox.hook import ENV_AS_OF, ENV_SEED
from finops_pipeline.providers.azure.sandbox.generator import DEFAULT_SEED
from finops_pipeline.providers.azure.sandbox.service import (
    DEFAULT_PAGE_SIZE,
    AzureCostManagementSandbox,
    AzureSandboxSettings,
)
from finops_pipeline.providers.azure.sandbox.transport import AzureSandboxTransport

ENV_PAGE_SIZE = "FINOPS_AZURE_SANDBOX_PAGE_SIZE"
ENV_THROTTLE_RATE = "FINOPS_AZURE_SANDBOX_THROTTLE_RATE"

_lock = threading.Lock()
# Keyed by the settings' repr: they hold a mapping, so they are not hashable.
_sandboxes: dict[str, AzureCostManagementSandbox] = {}


def settings_from_environment(environ: Mapping[str, str] | None = None) -> AzureSandboxSettings:
    """The sandbox's settings from the environment; the pull generation is read per request."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name, "").strip()

    try:
        return AzureSandboxSettings(
            seed=int(get(ENV_SEED) or DEFAULT_SEED),
            page_size=int(get(ENV_PAGE_SIZE) or DEFAULT_PAGE_SIZE),
            throttle_rate=float(get(ENV_THROTTLE_RATE) or 0),
            as_of=dt.date.fromisoformat(get(ENV_AS_OF)) if get(ENV_AS_OF) else None,
            generation=None,
        )
    except ValueError as error:
        raise ValueError(f"Invalid Azure sandbox setting: {error}") from None


def shared_sandbox(settings: AzureSandboxSettings | None = None) -> AzureCostManagementSandbox:
    """This process's sandbox for ``settings`` (from the environment by default)."""
    settings = settings or settings_from_environment()
    with _lock:
        key = repr(settings)
        sandbox = _sandboxes.get(key)
        if sandbox is None:
            sandbox = _sandboxes[key] = AzureCostManagementSandbox(settings)
        return sandbox


def attach_sandbox(options: Any, settings: AzureSandboxSettings | None = None) -> None:
    """Give a client's ``ClientOptions`` the sandbox's transport (Entra ID and Resource Manager)."""
    sandbox = shared_sandbox(settings)
    options.transport_factory = lambda: AzureSandboxTransport(sandbox)
