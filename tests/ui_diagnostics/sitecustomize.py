"""Loaded by every Python process the UI tests start (their PYTHONPATH leads here).

SIGUSR1 makes a process print every thread's stack to stderr, which the harness sends to what
is still running a minute after Ctrl-C, before killing it, so the launch's log shows where it
waited. Dagster uses no SIGUSR1 handler of its own.
"""

import faulthandler
import signal

faulthandler.register(signal.SIGUSR1, all_threads=True)
