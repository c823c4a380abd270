"""The collection's playbooks run by ansible-playbook, without the sealer command.

``ansible-playbook -i INVENTORY sealer.cluster.run -e sealer_image=NAME`` first runs the
collection's action ``sealer.cluster.prepare`` on the controller, which calls this module: the
inventory is read as ``sealer run -i`` reads it, and the cluster is prepared by the same
function (deploy.prepare_cluster: platforms detected, image checked, registries merged, state
and inventory written), each platform's rootfs mounted. Every host then gets, through
``add_host``, the variables and groups sealer's own inventory gives it, and the same roles
follow. ``sealer.cluster.finish`` unmounts the rootfs after the run, and after
``sealer.cluster.delete`` forgets the hosts reset, as ``sealer delete`` does.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sealer.cluster.clusterfile import Cluster, SSHConfig
from sealer.cluster.deploy import customize_run, platform_mounts, prepare_cluster
from sealer.cluster.host_paths import check_host_paths
from sealer.cluster.inventory import load_inventory
from sealer.cluster.inventory_file import InventoryFile, read_inventory_file
from sealer.cluster.membership import delete_targets
from sealer.cluster.runner import REMOTE_TMP
from sealer.cluster.state import cluster_lock, cluster_names, clusters_dir, forget_hosts, load_state, resolve_name
from sealer.errors import SealerError
from sealer.names import check_name
from sealer.oci.reference import Reference
from sealer.progress import SilentReporter
from sealer.store.image import get_image
from sealer.store.layout import Store
from sealer.store.mount import mount_rootfs, release_rootfs, unmount_all


def cluster_argument(playbook: str, given: str | None, typed: Sequence[str] = ()) -> str:
    """The cluster's name the playbook was given with ``-e sealer_cluster=NAME``, required: absent,
    empty, not a cluster's name, or cut short by Ansible (which parses ``-e "sealer_cluster=a b"``
    as ``a`` and drops ``b``: ``typed`` holds the ``-e`` strings as the operator typed them) is a
    SealerError in one line. A cluster's data, and the record of the cluster a host belongs to,
    are named by it on every host: a default would silently make a second cluster."""
    for text in typed:
        if text.startswith("@") or text.lstrip().startswith(("{", "[")):
            continue  # a file, or JSON/YAML: Ansible reads the value whole
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        named = [w for w in words if w.startswith("sealer_cluster=")]
        stray = [w for w in words if "=" not in w]
        if named and stray:
            raise SealerError(
                f"-e {text!r}: Ansible reads it as {named[-1]} and drops {' '.join(stray)!r}; a cluster's name is "
                "a DNS label (lowercase letters, digits and '-')"
            )
    if given is None:
        raise SealerError(f"sealer.cluster.{playbook} needs the cluster's name: -e sealer_cluster=NAME (no default)")
    return check_name(given, "cluster", "sealer_cluster")


def _inventory(sources: list[str]) -> InventoryFile:
    if len(sources) != 1:
        given = ", ".join(sources) or "none"
        raise SealerError(f"sealer's playbooks read one inventory (-i INVENTORY), not {given}")
    return read_inventory_file(Path(sources[0]), SSHConfig())


def _password_refused(addresses: list[str]) -> SealerError:
    return SealerError(
        f"sudo asks for a password on {', '.join(addresses)}: the playbooks without the sealer command need sudo "
        "without a password (or root logins); sealer run -i INVENTORY serves the password"
    )


def host_entries(inventory: dict[str, Any], names: dict[str, str], addresses: list[str]) -> list[dict[str, Any]]:
    """For each address, ``add_host``'s arguments: the host's inventory name, the groups and the
    variables (all's, its groups', its own, in Ansible's order) sealer's inventory gives it."""
    root = inventory["all"]
    entries = []
    for address in addresses:
        groups: list[str] = []
        group_vars: dict[str, Any] = {}
        for group, body in root["children"].items():
            if address in (body.get("hosts") or {}):
                groups.append(group)
                group_vars.update(body.get("vars") or {})
        own = root["hosts"].get(address) or {}
        # Ansible's scratch space where sealer's runs put it (runner.py), unless the inventory says
        host_vars = {"ansible_remote_tmp": REMOTE_TMP, **root["vars"], **group_vars, **own}
        # the roles compare it with inventory_hostname: the registry host by its name in this inventory
        registry = host_vars.get("sealer_registry_host")
        if registry is not None:
            host_vars["sealer_registry_host"] = names.get(str(registry), registry)
        entries.append({"name": names.get(address, address), "groups": groups, **host_vars})
    return entries


def prepare_run(
    store: Store, image: str, cluster_name: str | None, sources: list[str], typed: Sequence[str] = ()
) -> dict[str, Any]:
    """What sealer run -i does before Ansible, for the inventory ``sources`` name; each
    platform's rootfs stays mounted until :func:`finish_run`. Returns the cluster's name and the
    hosts' ``add_host`` arguments. ``cluster_name``/``typed``: as :func:`cluster_argument` takes them."""
    name = cluster_argument("run", cluster_name, typed)
    if not image:
        raise SealerError("sealer.cluster.run needs the image: -e sealer_image=NAME")
    read = _inventory(sources)
    cluster = Cluster(name, Reference.parse(image), SSHConfig(), read.hosts)
    cluster.become_password = read.become_password
    check_host_paths(cluster, sources[0] if sources else "")
    found = get_image(store, cluster.image)
    cdir = clusters_dir(store) / name
    with cluster_lock(cdir):
        ready = prepare_cluster(store, cluster, found, SilentReporter())
        asks = sorted(a for a, f in ready.facts.items() if f.sudo == "password")
        if asks:
            raise _password_refused(asks)
        for platform, target in platform_mounts(cdir, ready.facts).items():
            mount_rootfs(store, found.for_platform(platform), target)
        customize_run(cluster, ready, cdir, "create", [])
    return {"cluster": name, "hosts": host_entries(ready.inventory, read.names, [h.address for h in cluster.hosts])}


def finish_run(store: Store, cluster_name: str) -> None:
    """Each platform's rootfs unmounted (or its copy removed) once the run playbook is done."""
    mounts = clusters_dir(store) / check_name(cluster_name, "cluster", "sealer_cluster_name") / "mounts"
    unmount_all(mounts)
    if mounts.is_dir():
        for target in mounts.iterdir():
            release_rootfs(target)


def prepare_delete(
    store: Store, cluster_name: str | None, sources: list[str], play_hosts: list[str], typed: Sequence[str] = ()
) -> dict[str, Any]:
    """What sealer delete checks before Ansible, for the inventory's hosts the play runs on (all,
    or those of --limit). Returns the cluster's name and the hosts' ``add_host`` arguments."""
    try:
        name = resolve_name(store, cluster_argument("delete", cluster_name, typed))
    except SealerError as err:  # said for a playbook: its variable, not the sealer command's flag
        known = ", ".join(cluster_names(store)) or "none"
        said = str(err).replace("--cluster: ", "sealer_cluster: ")
        raise SealerError(said if "(clusters: " in said else f"{said} (clusters: {known})") from err
    read = _inventory(sources)
    cluster = load_state(store, name)
    addresses = [a for a, n in read.names.items() if n in play_hosts]
    if not addresses:
        raise SealerError(f"none of the play's hosts is a master or node of {sources[0]}")
    targets = delete_targets(cluster, addresses)
    inventory = load_inventory((clusters_dir(store) / name / "inventory.yaml").read_text())
    asks = sorted(a for a in targets if (inventory["all"]["hosts"].get(a) or {}).get("sealer_become_password"))
    if asks:
        raise _password_refused(asks)
    return {"cluster": name, "hosts": host_entries(inventory, read.names, targets)}


def finish_delete(store: Store, cluster_name: str, reset: list[str]) -> None:
    """The hosts ``reset`` (addresses) forgotten, the cluster's state gone with its last host."""
    name = check_name(cluster_name, "cluster", "sealer_cluster_name")
    cdir = clusters_dir(store) / name
    with cluster_lock(cdir):
        cluster = load_state(store, name)
        forget_hosts(cdir, cluster, [h.address for h in cluster.hosts if h.address in reset])


STEPS: dict[str, Callable[..., Any]] = {
    "prepare_run": prepare_run,
    "finish_run": finish_run,
    "prepare_delete": prepare_delete,
    "finish_delete": finish_delete,
}


def step(name: str, *args: Any) -> dict[str, Any]:
    """A step for the collection's action plugins: its result for the task (``sealer``), or a
    failed task's one-line message."""
    try:
        out = STEPS[name](Store.open(), *args)
    except SealerError as err:
        return {"failed": True, "msg": str(err)}
    except Exception as err:  # said in one line: a traceback is not the operator's business
        return {"failed": True, "msg": f"sealer failed: {type(err).__name__}: {err}"}
    return {"sealer": out} if out is not None else {}
