"""Crash points, for the tests that kill sealer at every step of its writes.

Each place where the store changes calls :func:`checkpoint`. With ``SEALER_KILL_AT=N`` in the
environment the process kills itself with SIGKILL at its Nth checkpoint, exactly as a power cut
or an OOM kill would stop it; with ``SEALER_CHECKPOINTS`` set, the checkpoints are only counted
(:func:`reached`), so a test learns how many points a command has. Without either (every real
run) a checkpoint is two dictionary lookups.
"""

from __future__ import annotations

import itertools
import os
import signal

_counter = itertools.count(1)
_reached = [0]


def checkpoint() -> None:
    kill_at = os.environ.get("SEALER_KILL_AT")
    if kill_at is None and "SEALER_CHECKPOINTS" not in os.environ:
        return
    _reached[0] = n = next(_counter)
    if kill_at is not None and n == int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)


def reached() -> int:
    return _reached[0]
