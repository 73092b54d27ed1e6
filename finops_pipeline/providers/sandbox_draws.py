"""Deterministic "random" values for the providers' sandboxes.

Every sandbox process must serve the same recommendations, ids and amounts for the same inputs
(a Dagster run worker, the CLI and a test agree without sharing state), so values are drawn
from a SHA-256 of their inputs rather than from a random generator.
"""

from __future__ import annotations

import hashlib


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hex_id(length: int, *parts: object) -> str:
    """``length`` hex digits determined by ``parts``."""
    return hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()[:length]


def uuid_id(*parts: object) -> str:
    """A UUID-shaped id (8-4-4-4-12 hex digits) determined by ``parts``."""
    text = hex_id(32, *parts)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
