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
# The UI's first page would open with Dagster's "Join the Dagster community" dialog (Slack,
# newsletter sign-up) over the runs a person came to see.
NUX_CONFIG = (
    "# Dagster's \"Join the Dagster community\" dialog on the UI's first visit is off; set\n"
    "# enabled: true to see it.\n"
    "nux:\n"
    "  enabled: false\n"
)
#: Each setting this module states, by its top-level key.
_SETTINGS = {"telemetry": TELEMETRY_CONFIG, "nux": NUX_CONFIG}


def write_instance_config(home: Path) -> Path:
    """Create the local instance's ``dagster.yaml`` if missing, with telemetry and Dagster's
    community dialog explicitly off.

    A ``dagster.yaml`` this function wrote earlier gets the settings it lacks; any other
    existing file is the user's and is left as it is.
    """
    path = home / "dagster.yaml"
    if not path.exists():
        path.write_text(
            f"{INSTANCE_CONFIG_HEADER}\n"
            "# Runs, event logs and schedules are kept in this folder.\n"
            + "".join(_SETTINGS.values())
        )
        return path
    text = path.read_text()
    if not text.startswith(INSTANCE_CONFIG_HEADER):
        return path
    keys = {line.split(":", 1)[0] for line in text.splitlines() if not line.startswith((" ", "#"))}
    missing = "".join(setting for key, setting in _SETTINGS.items() if key not in keys)
    if missing:
        path.write_text(text + ("" if text.endswith("\n") else "\n") + missing)
    return path
