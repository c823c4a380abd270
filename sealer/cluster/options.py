"""What a run, join or delete is asked to do beyond its cluster: one frozen object each, passed
down from the command line to the cluster's operations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# asked for sudo's password when a host's sudo needs one (None: there is none to give)
BecomePassword = Callable[[], str | None]


def no_become_password() -> str | None:
    return None


@dataclass(frozen=True)
class RunOptions:
    """``strict_host_keys``: refuse hosts whose key is not known yet. ``become_password``: sudo's
    password for hosts whose login user needs one (asked for only when one does). ``check``: a dry
    run that changes nothing; ``diff``: with it, the changed files' differences. ``distribution``:
    rsync, swarm or auto (None: the Clusterfile's). ``hosts_may_change``: the run may add hosts to
    an existing cluster (join). ``ready_timeout``: seconds to wait for the hosts that join to be
    Ready in the API (None: the role's default, or the inventory's). ``verify``: the rootfs compared
    by content (rsync --checksum) rather than by size and time: a run repairs, a check reports,
    every file that differs."""

    strict_host_keys: bool = False
    become_password: BecomePassword = field(default=no_become_password, repr=False)
    check: bool = False
    diff: bool = False
    distribution: str | None = None
    hosts_may_change: bool = False
    ready_timeout: int | None = None
    verify: bool = False


@dataclass(frozen=True)
class JoinRequest:
    """Hosts to add to a cluster (the only one when ``cluster`` is None); they log in as its first
    host does, or behind ``bastion``."""

    cluster: str | None
    masters: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    bastion: str | None = None
    options: RunOptions = RunOptions()


@dataclass(frozen=True)
class DeleteRequest:
    """Hosts to reset and forget (every host when ``addresses`` is None). ``drain``: drain each
    host's Node first; ``force``: remove hosts that cannot be reached without running anything
    on them (their Node and etcd member through a master that stays)."""

    cluster: str | None
    addresses: tuple[str, ...] | None = None
    become_password: BecomePassword = field(default=no_become_password, repr=False)
    drain: bool = True
    force: bool = False


# the defaults, one object for every signature that takes options
DEFAULT_RUN = RunOptions()
