"""Which plugins run where in an operation, worked out on the controller for the roles.

The inventory's ``sealer_plugins_plan`` maps each phase of the operation (and of a later delete) to
its plugins in order (plugins.py: the image's first, then the Clusterfile's), each with the
addresses it runs on. The ``sealer_plugins`` role runs a phase's list; the collection's
``sealer.cluster.plugin`` action does a plugin's work on a host (a SHELL script, a host name)
or on master0 through kubectl (LABEL, TAINT, CLUSTERCHECK).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sealer.cluster.clusterfile import Cluster
from sealer.cluster.plugins import HostLike, Plugin, hostnames, operation_steps, select_hosts

# the types whose work is done through kubectl on master0, for the hosts selected
ON_MASTER0 = ("LABEL", "TAINT", "CLUSTERCHECK")


def plugin_entry(plugin: Plugin, phase: str, addresses: list[str]) -> dict[str, Any]:
    """What the role and the action need of one plugin in one phase."""
    entry: dict[str, Any] = {"name": plugin.name, "type": plugin.type, "where": plugin.where, "hosts": addresses}
    if plugin.type == "HOSTNAME":
        names = hostnames(plugin)
        entry["names"] = {a: names[a] for a in addresses if a in names}
        entry["hosts"] = [a for a in addresses if a in names]
    else:
        entry["data"] = plugin.data
    labelled = [s.label for s in plugin.on if s.kind == "label"]
    if labelled:  # resolved on master0 through the API when the phase runs
        entry["labels"] = labelled
    return entry


def plugin_plan(
    cluster: Cluster, image_plugins: Sequence[Plugin], operation: str, joined: Iterable[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Each phase of ``operation`` (create or join) and of delete, with its plugins' entries;
    a join's phases act on the ``joined`` hosts only (a delete's on the play's hosts)."""
    scope = list(joined) if operation == "join" else None
    plan: dict[str, list[dict[str, Any]]] = {}
    hosts = [HostLike(h.address, h.role) for h in cluster.hosts]
    for op in (operation, "delete"):
        for step, plugins in operation_steps(op, image_plugins, cluster.plugins):
            entries = [plugin_entry(p, step, select_hosts(p, step, hosts, scope)) for p in plugins]
            if entries:
                plan[step] = entries
    return plan


def operation_of(hosts_may_change: bool, previous: Iterable[str], hosts: Iterable[str]) -> tuple[str, list[str]]:
    """A run's operation: a join when it adds hosts to a cluster that had some (the hosts
    joined), else a create (a re-run included)."""
    before = set(previous)
    joined = [a for a in hosts if a not in before]
    if hosts_may_change and before and joined:
        return "join", joined
    return "create", []
