"""SIGTERM and SIGINT end a command the way an error does: cleanly, children included.

The handler raises :class:`~sealer.errors.Interrupted` in the main thread, so the same
``finally`` blocks and context managers that clean up after an error remove temporary
files and stop children (a RUN's sandbox, for one). The store needs nothing more: every
change becomes visible by one rename, so an interrupted command leaves the old state or the
new one, as a SIGKILL would. Once interrupted, further signals are ignored so that cleanup is
not cut short (SIGKILL still ends the command at once, and the store stays consistent).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from types import FrameType

from sealer.errors import Interrupted

CHILD_GRACE = 3.0  # seconds children get to exit after SIGTERM, before SIGKILL


def install() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    for other in (signal.SIGTERM, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def descendants(root: int) -> list[int]:
    """Every living process below ``root``, parents before their children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces; the parent pid follows it
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def end_children() -> None:
    """SIGTERM to every process this command started (and theirs), SIGKILL to those left."""
    pids = descendants(os.getpid())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + CHILD_GRACE
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap()
        pids = [p for p in pids if _alive(p)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _reap()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] != b"Z"


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
