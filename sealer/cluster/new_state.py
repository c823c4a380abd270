"""A cluster's state on the controller that a failed first run leaves behind, and state that is
incomplete for any reason.

A first run writes the cluster's directory (its known hosts, Clusterfile, registry, inventory)
before Ansible changes any host. When it fails before any host changed, nothing of it is kept:
``sealer ps`` would list a cluster no host knows of. A host has changed once the cluster's SSH
key was made (it goes to the hosts that logged in with a password) or a playbook started (its
runner directory is under runs/); from then on the state stays, so that delete can undo it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType

from sealer._fs import file_lock
from sealer.store.mount import unmount_all

# what a run writes that makes a directory a listed cluster, and what it writes beside
_STATE_FILES = ("Clusterfile", "host-vars.yaml", "inventory.yaml")


class DiscardedOnEarlyFailure:
    """Around a run: made before the run touches the cluster's directory, it remembers whether
    the cluster existed; on a failure before any host changed, a cluster that did not exist
    goes again (its whole directory, or the state files when the directory held only logs)."""

    def __init__(self, cdir: Path) -> None:
        self.cdir = cdir
        self.existed_dir = cdir.exists()
        self.existed = (cdir / "Clusterfile").exists()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None or self.existed or hosts_touched(self.cdir):
            return
        unmount_all(self.cdir)
        if not self.existed_dir:
            shutil.rmtree(self.cdir, ignore_errors=True)
            return
        for name in _STATE_FILES:
            (self.cdir / name).unlink(missing_ok=True)


def hosts_touched(cdir: Path) -> bool:
    """Whether a run of this cluster got as far as changing a host (or a check as far as its
    playbook, whose log the failure's message names)."""
    runs = cdir / "runs"
    return (runs.is_dir() and any(runs.iterdir())) or (cdir / "ssh").exists()


def incomplete_state(clusters: Path, name: str) -> str | None:
    """What the named cluster's directory lacks to be a cluster delete can act on (its
    Clusterfile, or the inventory the playbooks run with); None when it is whole or absent."""
    cdir = clusters / name
    if not cdir.is_dir():
        return None
    missing = [f for f in ("Clusterfile", "inventory.yaml") if not (cdir / f).is_file()]
    return " and ".join(missing) or None


def remove_incomplete(clusters: Path, name: str) -> None:
    """The directory of a cluster whose state is incomplete, removed (under the cluster's lock):
    without an inventory no playbook can reset its hosts, and sealer made all of it."""
    cdir = clusters / name
    with file_lock(cdir / ".lock", blocking=False, busy=f"cluster {name} is being changed by another sealer command"):
        unmount_all(cdir)
        shutil.rmtree(cdir)
