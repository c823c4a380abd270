"""Secrets given in the environment, taken out of the process's exec block when sealer starts.

Python's ``os.environ`` keeps a copy; removing a variable there calls unsetenv, which drops the
C library's pointer but leaves ``NAME=value`` in the block the kernel put on the stack at exec,
which ``/proc/PID/environ`` (and ``ps e``) show for the whole run. Each secret variable is
overwritten in that block before any work starts: sudo's password is then kept only in this
module, the SSH password only in ``os.environ`` (for the command line's option, which removes it
there once read); no child inherits either.
"""

from __future__ import annotations

import os

BECOME = "SEALER_BECOME_PASSWORD"
SSH = "SEALER_SSH_PASSWORD"

_become: list[str | None] = []  # one item once taken: the value, or None when it was not set


def _scrub(name: str) -> None:
    """``name=value`` out of the C environment and overwritten where it was (the exec block,
    unless something set it since); ``os.environ`` is left as it is."""
    if name not in os.environ:
        return
    import ctypes  # only when a secret was given: every other start is spared loading it

    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_void_p
    libc.getenv.argtypes = [ctypes.c_char_p]
    value_at = libc.getenv(name.encode())
    if not value_at:
        return
    start = value_at - len(name) - 1  # the entry begins with "NAME="
    length = len(name) + 1 + len(ctypes.string_at(value_at))
    os.unsetenv(name)  # first: the C library finds the entry by its name, which the wipe removes
    ctypes.memset(start, 0, length)


def scrub_secrets() -> None:
    """Called first thing by ``sealer``: both secrets out of the exec block, sudo's taken."""
    _scrub(SSH)
    take_become_password()


def take_become_password() -> str | None:
    """``$SEALER_BECOME_PASSWORD``, taken out of the environment (and the exec block) on the
    first call; later calls return the same value."""
    if not _become:
        _scrub(BECOME)
        _become.append(os.environ.pop(BECOME, None))
    return _become[0]
