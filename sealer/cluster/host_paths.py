"""The paths on the hosts an inventory may point elsewhere, checked before any host is touched.

sealer writes, syncs with ``--delete`` and removes below one directory per cluster on a host:
``<sealer_data_root>/<cluster name>``. The data root must be an absolute, normalized path with
a directory named for sealer in it (``/var/lib/sealer/data``, ``/srv/sealer``), so that no
variable can turn a removal at its end into one of ``/etc`` or a user's home. Every path sealer
writes, syncs or removes there is worked out by the roles (their ``vars/``, which outrank an
inventory): an inventory that sets one is refused rather than silently overruled. The few that
name system places by design (CA and hosts.toml directories) must be absolute and normalized.
The reset role asserts its data directory before it removes anything (``-e`` outranks vars/).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from sealer.cluster.clusterfile import Cluster
from sealer.cluster.collection import computed_variables, shared_defaults
from sealer.errors import ClusterfileError

# system places by design, which an inventory may set: absolute and normalized (one path, or a
# list of them)
ABSOLUTE = ("sealer_runtime_hosts_dir", "sealer_registry_ca_dirs", "sealer_reset_ca_dirs", "sealer_preflight_data_dir")
_NAMES_SEALER = re.compile(r"/[^/]*sealer[^/]*(/|$)")


def check_host_paths(cluster: Cluster, source: str = "") -> None:
    """Every host's path variables (its inventory's) as the module says; a ClusterfileError naming
    the inventory (``source``), the host, the variable and its value otherwise."""
    default_root = str(shared_defaults()["sealer_data_root"])
    computed = computed_variables()
    for host in cluster.hosts:
        where = f"{source}: host {host.address}" if source else f"host {host.address}"
        root = host.vars.get("sealer_data_root", default_root)
        if not _normal(root) or root == "/" or not _NAMES_SEALER.search(root):
            raise ClusterfileError(
                f"{where}: sealer_data_root {root!r} must be an absolute, normalized path with a directory "
                "named for sealer in it (like /var/lib/sealer/data)"
            )
        for name in sorted(set(host.vars) & computed):
            raise ClusterfileError(
                f"{where}: {name} {host.vars[name]!r} is worked out by the collection's roles from sealer_data_root "
                f"and the cluster's name, not read from an inventory: set sealer_data_root to move the cluster's data"
            )
        for name in ABSOLUTE:
            value = host.vars.get(name)
            values = value if isinstance(value, list) else [value]
            if value is not None and not all(_normal(v) and v != "/" for v in values):
                raise ClusterfileError(f"{where}: {name} {value!r} must be absolute, normalized paths")


def _normal(value: Any) -> bool:
    """An absolute path as posixpath.normpath writes it (no '..', '.', '//' or trailing '/')."""
    return (
        isinstance(value, str)
        and value.startswith("/")
        and posixpath.normpath(value) == value
        and not value.startswith("//")
    )
