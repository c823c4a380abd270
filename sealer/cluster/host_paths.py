"""The paths on the hosts an inventory may point elsewhere, checked before any host is touched.

sealer writes, syncs with ``--delete`` and removes below one directory per cluster on a host:
``<sealer_data_root>/<cluster name>``. The data root must be an absolute, normalized path with
a directory named for sealer in it (``/var/lib/sealer/data``, ``/srv/sealer``), so that no
variable can turn a removal at its end into one of ``/etc`` or a user's home. Every variable
whose path sealer writes or removes must lie inside the cluster's directory; the few that name
system places by design (CA and hosts.toml directories, pid files) must be absolute and
normalized. The reset role asserts the same before it removes anything.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from sealer.cluster.clusterfile import Cluster
from sealer.cluster.collection import shared_defaults
from sealer.errors import ClusterfileError

# the cluster's directory itself, or a path inside it
CLUSTER_DIR_OR_BELOW = ("sealer_data_dir", "sealer_reset_data_dir")
# strictly inside the cluster's directory: what the roles write, sync or remove there
INSIDE_CLUSTER_DIR = (
    "sealer_rootfs_dir", "sealer_rootfs_dest", "sealer_rootfs_stamp", "sealer_rootfs_swarm_dir",
    "sealer_registry_data", "sealer_registry_config", "sealer_registry_binary",
    "sealer_app_rootfs", "sealer_app_done", "sealer_kubernetes_rootfs", "sealer_kubernetes_config_dest",
    "sealer_kubernetes_done",
)  # fmt: skip
# system places by design: absolute and normalized (one path, or a list of them)
ABSOLUTE = (
    "sealer_registry_pidfile", "sealer_reset_registry_pidfile", "sealer_runtime_hosts_dir",
    "sealer_reset_runtime_hosts_dir", "sealer_registry_ca_dirs", "sealer_reset_ca_dirs", "sealer_preflight_data_dir",
)  # fmt: skip
_NAMES_SEALER = re.compile(r"/[^/]*sealer[^/]*(/|$)")


def check_host_paths(cluster: Cluster, source: str = "") -> None:
    """Every host's path variables (its inventory's) as the module says; a ClusterfileError naming
    the inventory (``source``), the host, the variable and its value otherwise."""
    default_root = str(shared_defaults()["sealer_data_root"])
    for host in cluster.hosts:
        where = f"{source}: host {host.address}" if source else f"host {host.address}"
        root = host.vars.get("sealer_data_root", default_root)
        if not _normal(root) or root == "/" or not _NAMES_SEALER.search(root):
            raise ClusterfileError(
                f"{where}: sealer_data_root {root!r} must be an absolute, normalized path with a directory "
                "named for sealer in it (like /var/lib/sealer/data)"
            )
        owned = f"{root}/{cluster.name}"
        for name in (*CLUSTER_DIR_OR_BELOW, *INSIDE_CLUSTER_DIR):
            if name not in host.vars:
                continue
            value = host.vars[name]
            inside = _normal(value) and value.startswith(owned + "/")
            if not inside and not (name in CLUSTER_DIR_OR_BELOW and value == owned):
                below = "" if name in CLUSTER_DIR_OR_BELOW else " (below it)"
                raise ClusterfileError(
                    f"{where}: {name} {value!r} must be an absolute, normalized path inside {owned}{below}, "
                    "the directory sealer owns for this cluster"
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
