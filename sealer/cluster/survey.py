"""What a cluster's hosts say of it now: the collection's status playbook, run on its masters
(and on the other hosts a command names), read into the Nodes the API lists, etcd's members
with their health, and the hosts that could not be reached. Nothing changes on any host."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealer.cluster.clusterfile import Cluster
from sealer.cluster.health import Member, NodeStatus, members_of, node_of, nodes_of
from sealer.cluster.results import Reports
from sealer.cluster.runner import PlaybookOptions, run_playbook
from sealer.errors import DeployError
from sealer.progress import Reporter


@dataclass
class ClusterView:
    """``api``: the master whose API listed the Nodes (master0 when it answered), None when none
    did; ``etcd``: the master whose etcd listed the members (None: none did, or the image has no
    etcdctl)."""

    api: str | None = None
    nodes: list[NodeStatus] = field(default_factory=list)
    etcd: str | None = None
    members: list[Member] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)


def run_stamp(suffix: str) -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ") + suffix


def survey(cdir: Path, cluster: Cluster, hosts: list[str], reporter: Reporter, extravars: dict[str, Any] | None = None,
           prefer: list[str] | None = None, tags: str | None = None) -> ClusterView:  # fmt: skip
    """Run the status playbook on ``hosts`` (each master lists the Nodes and etcd's members, each
    other host answers; ``tags``: only ``nodes``, say); the answers of the masters ``prefer``
    names first, then master0's, then those of the first master that answered."""
    masters = [h.address for h in cluster.masters]
    run_dir = cdir / "runs" / run_stamp("-status")
    with reporter.task(f"reading the cluster's state on {len(hosts)} hosts"):
        options = PlaybookOptions(extravars=dict(extravars or {}), limit=",".join(hosts), tags=tags)
        result = run_playbook("status", cdir / "inventory.yaml", run_dir, reporter, options)
    other = [f for f in result.failures if f.host not in result.unreachable]
    if other:
        raise DeployError("\n".join(str(f) for f in other) + f"\n(ansible-runner output in {run_dir})")
    view = view_of(result.reports, list(dict.fromkeys([*(prefer or []), *masters])))
    view.unreachable = set(result.unreachable)
    return view


def view_of(reports: Reports, masters: list[str]) -> ClusterView:
    """The first ``nodes`` and ``etcd`` reports of ``masters``, in that order (a report a task
    delegated to a master made is under the host the task ran for: any host's is taken last)."""
    view = ClusterView()
    hosts = list(dict.fromkeys([*masters, *reports.by_host]))
    for address in hosts:
        listed = reports.get(address, "nodes")
        if view.api is None and listed is not None:
            view.api, view.nodes = address, nodes_of(listed.data.get("document"))
        etcd = reports.get(address, "etcd")
        if view.etcd is None and etcd is not None and etcd.flag("etcdctl"):
            view.etcd, view.members = address, members_of(etcd.data)
    return view


def host_rows(
    cdir: Path, cluster: Cluster, hosts: list[dict[str, str]], reporter: Reporter
) -> tuple[ClusterView, list[dict[str, Any]]]:
    """``sealer ps``: each saved host (address, role, platform, hostname) with what the API says
    of its Node, read through master0 alone (quick), else through the other masters."""
    masters = [h.address for h in cluster.masters]
    view = survey(cdir, cluster, masters[:1], reporter, tags="nodes")
    if view.api is None and len(masters) > 1:
        view = survey(cdir, cluster, masters[1:], reporter, tags="nodes")
    rows = []
    for host in hosts:
        node = node_of(view.nodes, host["address"], host.get("hostname", ""))
        live: dict[str, Any] = {"node": None, "ready": None, "kubeletVersion": None, "schedulable": None}
        if node is not None:
            live = {"node": node.name, "ready": node.ready, "kubeletVersion": node.kubelet_version,
                    "schedulable": node.schedulable}  # fmt: skip
        rows.append({**host, **live})
    return view, rows
