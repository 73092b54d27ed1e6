"""Finding the encryption key ring for this process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from finops_pipeline.config import finops_home
from finops_pipeline.errors import MissingKeyError
from finops_pipeline.security.ciphertext import (
    CURRENT_KEY_ENV,
    PREVIOUS_KEYS_ENV,
    KeyRing,
    generate_key,
)

LOCAL_KEY_FILE = "encryption.key"


def local_key_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded default keeps its generated key (mode 0600)."""
    return finops_home(environ) / LOCAL_KEY_FILE


def load_key_ring(
    encryption_key: str | None = None,
    previous_keys: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> KeyRing:
    """The key ring from explicit values, else ``ENCRYPTION_KEY``, else the local key file.

    The local key file exists only where ``finops demo`` or ``finops keys generate --local``
    created it for the embedded default; production sets ``ENCRYPTION_KEY``.
    """
    env = os.environ if environ is None else environ
    if encryption_key:
        previous = [part for part in (previous_keys or "").replace(",", " ").split() if part]
        return KeyRing.from_strings(encryption_key, previous)
    if env.get(CURRENT_KEY_ENV, "").strip():
        return KeyRing.from_environment(env)
    path = local_key_path(env)
    if path.is_file():
        merged = dict(env)
        merged[CURRENT_KEY_ENV] = path.read_text().strip()
        return KeyRing.from_environment(merged)
    raise MissingKeyError(
        f"{CURRENT_KEY_ENV} is not set and there is no local key at {path}. Set "
        f"{CURRENT_KEY_ENV} to 64 hex characters (`finops keys generate` prints one); keep old "
        f"keys in {PREVIOUS_KEYS_ENV} until `finops keys rotate` has run."
    )


def ensure_local_key(environ: Mapping[str, str] | None = None) -> Path:
    """Create the local key file if missing (owner-only), and return its path."""
    path = local_key_path(environ)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate_key() + "\n")
    return path
