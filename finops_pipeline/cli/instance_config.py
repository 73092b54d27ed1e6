"""The ``dagster.yaml`` of the local Dagster instance the CLI, the demo and ``finops ui`` use."""

from __future__ import annotations

from pathlib import Path

INSTANCE_CONFIG_HEADER = (
    "# The local Dagster instance of finops (CLI runs, the demo and `finops ui`)."
)

# Dagster's usage statistics are on unless an instance says otherwise, and the first use of an
# instance prints a telemetry banner before anything of ours. The instance the CLI creates
# states its choice instead.
TELEMETRY_CONFIG = (
    "# Dagster's anonymous usage statistics (https://docs.dagster.io/about/telemetry) are off\n"
    "# for this instance; set enabled: true to send them.\n"
    "telemetry:\n"
    "  enabled: false\n"
)


def write_instance_config(home: Path) -> Path:
    """Create the local instance's ``dagster.yaml`` if missing, with telemetry explicitly off.

    A ``dagster.yaml`` this function wrote earlier without a telemetry setting gets one; any
    other existing file is the user's and is left as it is.
    """
    path = home / "dagster.yaml"
    if not path.exists():
        path.write_text(
            f"{INSTANCE_CONFIG_HEADER}\n"
            "# Runs, event logs and schedules are kept in this folder.\n"
            f"{TELEMETRY_CONFIG}"
        )
        return path
    text = path.read_text()
    ours = text.startswith(INSTANCE_CONFIG_HEADER)
    if ours and not any(line.startswith("telemetry:") for line in text.splitlines()):
        path.write_text(text + ("" if text.endswith("\n") else "\n") + TELEMETRY_CONFIG)
    return path
