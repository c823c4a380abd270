"""A cluster's saved state on the controller: ``$SEALER_ROOT/clusters/<name>/`` holds the
Clusterfile used, the inventory (0600), the operator's own host variables, the known host keys,
and one ansible-runner directory per run. Reading, writing and listing it, and the lock that
keeps two commands from changing one cluster at once."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from sealer._fs import atomic_write, file_lock
from sealer.cluster.clusterfile import Cluster, parse_clusterfile, to_clusterfile
from sealer.cluster.inventory import dump_inventory, load_inventory
from sealer.errors import SealerError
from sealer.names import check_name
from sealer.store.layout import Store
from sealer.store.mount import unmount_all

# the operator's own Ansible variables per host, when the cluster came from an inventory file
HOST_VARS = "host-vars.yaml"
# an unfinished upgrade: the image it goes to and how far each host got (sealer/cluster/upgrade.py)
UPGRADE_PROGRESS = "upgrade.json"


def clusters_dir(store: Store) -> Path:
    return store.root / "clusters"


def cluster_lock(cdir: Path) -> contextlib.AbstractContextManager[None]:
    cdir.mkdir(parents=True, exist_ok=True)
    os.chmod(cdir, 0o700)
    busy = f"cluster {cdir.name} is being changed by another sealer command"
    return file_lock(cdir / ".lock", blocking=False, busy=busy)


def cluster_names(store: Store) -> list[str]:
    base = clusters_dir(store)
    return sorted(p.name for p in base.iterdir() if (p / "Clusterfile").exists()) if base.is_dir() else []


def resolve_name(store: Store, name: str | None) -> str:
    """The cluster meant: the one named, or the only one there is."""
    names = cluster_names(store)
    if name is not None:
        check_name(name, "cluster", "--cluster")
        if name not in names:
            raise SealerError(f"no cluster named {name} (clusters: {', '.join(names) or 'none'})")
        return name
    if len(names) != 1:
        raise SealerError(f"say which cluster with --cluster (clusters: {', '.join(names) or 'none'})")
    return names[0]


def load_state(store: Store, name: str) -> Cluster:
    """The cluster as the last run left it: its Clusterfile, and its hosts' inventory variables."""
    cdir = clusters_dir(store) / check_name(name, "cluster")
    cluster = parse_clusterfile(cdir / "Clusterfile")
    host_vars = yaml.safe_load((cdir / HOST_VARS).read_text()) if (cdir / HOST_VARS).exists() else None
    if host_vars:
        cluster.hosts = [dataclasses.replace(h, vars=host_vars.get(h.address) or {}) for h in cluster.hosts]
    return cluster


def save_state(cdir: Path, cluster: Cluster) -> None:
    atomic_write(cdir / "Clusterfile", to_clusterfile(cluster).encode(), mode=0o600)
    host_vars = {h.address: h.vars for h in cluster.hosts if h.vars}
    if host_vars or (cdir / HOST_VARS).exists():
        atomic_write(cdir / HOST_VARS, yaml.safe_dump(host_vars, sort_keys=False).encode(), mode=0o600)


def host_list_changes(before: Cluster, after: Cluster) -> str:
    """What a run would silently redefine, and the command that does it; empty when nothing."""
    old = {h.address: h.role for h in before.hosts}
    new = {h.address: h.role for h in after.hosts}
    where = f" --cluster {after.name}"
    changes = [
        f"{a} is a {old[a]} of it, this run makes it a {new[a]} (sealer delete -{old[a][0]} {a}{where} first)"
        for a in new
        if a in old and old[a] != new[a]
    ]
    for role in ("master", "node"):
        added = [a for a, r in new.items() if r == role and a not in old]
        dropped = [a for a, r in old.items() if r == role and a not in new]
        if added:
            changes.append(f"this run adds {role} {','.join(added)} (sealer join -{role[0]} {','.join(added)}{where})")
        if dropped:
            changes.append(
                f"this run leaves out {role} {','.join(dropped)} (sealer delete -{role[0]} {','.join(dropped)}{where})"
            )
    return "; ".join(changes)


def forget_hosts(cdir: Path, cluster: Cluster, targets: list[str]) -> None:
    """The cluster's state without the hosts just reset; the whole state gone with its last host."""
    remaining = [h for h in cluster.hosts if h.address not in targets]
    if not remaining:
        unmount_all(cdir)
        shutil.rmtree(cdir)
        return
    cluster.hosts = remaining
    save_state(cdir, cluster)
    inventory = load_inventory((cdir / "inventory.yaml").read_text())
    for address in targets:
        inventory["all"]["hosts"].pop(address, None)
        for group in inventory["all"]["children"].values():
            (group.get("hosts") or {}).pop(address, None)
    atomic_write(cdir / "inventory.yaml", dump_inventory(inventory).encode(), mode=0o600)


def host_images(cdir: Path, image: str) -> dict[str, tuple[str, str]]:
    """Per host of an unfinished upgrade: the image it runs and the upgrade's last step done on
    it (empty when it runs the new image); no entry when there is no upgrade."""
    try:
        progress = json.loads((cdir / UPGRADE_PROGRESS).read_text())
        target, hosts = str(progress["image"]), dict(progress["hosts"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {str(a): (target, "") if step == "done" else (image, str(step)) for a, step in hosts.items()}


@dataclass
class ClusterSummary:
    name: str
    image: str
    hosts: list[dict[str, str]]


def list_clusters(store: Store, name: str | None = None) -> list[ClusterSummary]:
    if name is not None:
        check_name(name, "cluster", "--cluster")
    out = []
    for cluster_name in cluster_names(store):
        if name and cluster_name != name:
            continue
        cdir = clusters_dir(store) / cluster_name
        cluster = load_state(store, cluster_name)
        try:
            hostvars = load_inventory((cdir / "inventory.yaml").read_text())["all"]["hosts"]
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            hostvars = {}
        upgrade = host_images(cdir, str(cluster.image))
        hosts = [
            {
                "address": h.address,
                "role": h.role,
                "platform": str((hostvars.get(h.address) or {}).get("sealer_platform", "unknown")),
                "hostname": str((hostvars.get(h.address) or {}).get("sealer_hostname", "")),
                "image": upgrade.get(h.address, (str(cluster.image), ""))[0],
                "upgradeStep": upgrade.get(h.address, ("", ""))[1],
            }
            for h in cluster.hosts
        ]
        out.append(ClusterSummary(cluster_name, str(cluster.image), hosts))
    return out
