"""Where the store is: imported by every command, so the standard library's os only."""

from __future__ import annotations

import os


def root_dir() -> str:
    """$SEALER_ROOT; else /var/lib/sealer for root, and the user's data directory for others."""
    env = os.environ.get("SEALER_ROOT")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/sealer"
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data_home, "sealer")
