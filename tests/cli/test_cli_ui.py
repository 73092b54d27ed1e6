"""`finops ui` keeps its process alive around `dagster dev` and passes termination on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

# The child stands in for `dagster dev`: it says how it sees SIGINT, then waits for SIGTERM.
_CHILD = textwrap.dedent(
    """
    import signal, sys, time
    inherited = signal.getsignal(signal.SIGINT)
    print("sigint ignored" if inherited is signal.SIG_IGN else "sigint handled", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    time.sleep(120)
    """
)

# `finops ui` started as a background job of a non-interactive shell, which ignores SIGINT.
_PARENT = textwrap.dedent(
    """
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from finops_pipeline.cli.ui_command import run_in_foreground
    sys.exit(run_in_foreground([sys.executable, "-c", sys.argv[1]], dict(os.environ)))
    """
)


def test_ui_forwards_sigterm_and_gives_the_child_a_working_sigint() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, _CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "sigint handled"
        time.sleep(0.5)  # the parent installs its handlers right after starting the child
        parent.send_signal(signal.SIGINT)  # Ctrl-C reaches the child from the terminal ...
        time.sleep(0.5)
        assert parent.poll() is None  # ... so the parent only waits
        parent.send_signal(signal.SIGTERM)  # sent to the parent alone
        assert parent.wait(timeout=30) == 7  # the child got it and its exit code came back
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
