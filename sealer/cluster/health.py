"""What the cluster's API and etcd say of its hosts, read from the reports a master sent
(``kubectl get nodes -o json``, etcd's member list and each member's health): which Node is
which host, whether it is Ready, and whether a change of masters leaves etcd a healthy majority.

The rule that finds a host's Node is written again in the collection's filter plugin
(plugins/filter/nodes.py), which the roles wait with; tests/unit/test_health.py holds both to
one table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sealer.cluster.results import Reports


@dataclass(frozen=True)
class NodeStatus:
    """One Node as the API shows it."""

    name: str
    addresses: tuple[str, ...]
    ready: bool
    kubelet_version: str
    architecture: str
    schedulable: bool

    def to_json(self) -> dict[str, Any]:
        return {"node": self.name, "ready": self.ready, "kubeletVersion": self.kubelet_version,
                "architecture": self.architecture, "schedulable": self.schedulable}  # fmt: skip


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def nodes_of(document: Any) -> list[NodeStatus]:
    """The Nodes of ``kubectl get nodes -o json``; nothing for anything else."""
    out = []
    for item in _list(_map(document).get("items")):
        meta, spec, status = (
            _map(_map(item).get("metadata")),
            _map(_map(item).get("spec")),
            _map(_map(item).get("status")),
        )
        info = _map(status.get("nodeInfo"))
        out.append(NodeStatus(
            name=str(meta.get("name") or ""),
            addresses=tuple(str(_map(a).get("address")) for a in _list(status.get("addresses"))
                            if _map(a).get("type") == "InternalIP"),
            ready=any(_map(c).get("type") == "Ready" and _map(c).get("status") == "True"
                      for c in _list(status.get("conditions"))),
            kubelet_version=str(info.get("kubeletVersion") or ""),
            architecture=str(info.get("architecture") or ""),
            schedulable=not spec.get("unschedulable"),
        ))  # fmt: skip
    return out


def node_of(nodes: list[NodeStatus], address: str, hostname: str) -> NodeStatus | None:
    """A host's Node: the one whose InternalIP is the host's address, else the one named as the
    host (kubeadm names a Node by the host's name, in lowercase)."""
    for node in nodes:
        if address in node.addresses:
            return node
    return next((n for n in nodes if hostname and n.name == hostname.lower()), None)


def not_ready(document: Any, hosts: Mapping[str, str]) -> list[str]:
    """The hosts (address: hostname) whose Node is missing or not Ready."""
    nodes = nodes_of(document)
    return [a for a, name in hosts.items() if not ((n := node_of(nodes, a, name)) and n.ready)]


@dataclass(frozen=True)
class Member:
    """One etcd member, with its health when it was checked (None: not started, or not checked)."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    healthy: bool | None = None
    error: str = ""

    @property
    def address(self) -> str:
        """The host of its first peer URL: the master it runs on."""
        return next((urlsplit(u).hostname or "" for u in self.peer_urls), "")

    @property
    def state(self) -> str:
        if not self.name:
            return "not started"
        if self.healthy is None:
            return "health unknown"
        return "healthy" if self.healthy else "unhealthy" + (f" ({self.error})" if self.error else "")

    def describe(self) -> str:
        return f"{self.name or '?'} ({self.address}): {self.state}"


def members_of(data: Mapping[str, Any]) -> list[Member]:
    """The members of an etcd report (``etcdctl member list -w json`` and ``endpoint health
    --cluster -w json``, as the roles' script prints them)."""
    health = [_map(h) for h in _list(data.get("health"))]
    by_endpoint = {str(h.get("endpoint")): h for h in health}
    out = []
    for m in (_map(x) for x in _list(_map(data.get("members")).get("members"))):
        if not isinstance(m.get("ID"), int):
            continue
        clients = tuple(str(u) for u in _list(m.get("clientURLs")))
        checked = [by_endpoint[u] for u in clients if u in by_endpoint]
        healthy = None if not checked else all(h.get("health") is True for h in checked)
        error = "; ".join(str(h.get("error")) for h in checked if h.get("error"))
        peers = tuple(str(u) for u in _list(m.get("peerURLs")))
        out.append(Member(int(m["ID"]), str(m.get("name") or ""), peers, clients, healthy, error))
    return out


def quorum_after(members: list[Member], leaving: set[str]) -> str | None:
    """Why removing the members of the hosts ``leaving`` would leave etcd without a healthy
    majority (each member named with its state), or None when it would not."""
    remaining = [m for m in members if m.address not in leaving]
    if not remaining:
        return None
    healthy = sum(1 for m in remaining if m.healthy)
    needed = len(remaining) // 2 + 1
    if healthy >= needed:
        return None
    return (
        f"etcd would lose quorum: {healthy} of the {len(remaining)} members left would be healthy, "
        f"{needed} are needed (members: {'; '.join(m.describe() for m in members)})"
    )


def drain_data_flag(kubelet_version: str) -> str:
    """kubectl drain's flag for emptyDir data: --delete-local-data before v1.20."""
    parts = kubelet_version.lstrip("v").split(".")
    try:
        older = (int(parts[0]), int(parts[1])) < (1, 20)
    except (IndexError, ValueError):
        older = False
    return "--delete-local-data" if older else "--delete-emptydir-data"


def joined_problems(reports: Reports, hostnames: Mapping[str, str], masters: list[str]) -> list[str]:
    """What is wrong after a run or join, one line each: the hosts that initialised or joined
    (their ``kubernetes-state`` report said so) and whose Node is not Ready in master0's last
    list, and the masters etcd does not list as started members."""
    joining = [h for h in hostnames if (r := reports.get(h, "kubernetes-state")) is not None and not r.flag("joined")]
    if not joining:
        return []
    problems = []
    listed = next(iter(reports.of_kind("nodes")), None)
    nodes = nodes_of(listed.data.get("document")) if listed is not None else []
    missing = []
    for address in joining:
        node = node_of(nodes, address, hostnames[address])
        if node is None or not node.ready:
            missing.append(f"{address} ({'no Node' if node is None else f'Node {node.name} NotReady'})")
    if missing:
        why = "" if listed is not None else " (master0's API did not answer)"
        problems.append(f"not Ready in the API in time{why}: {', '.join(missing)} (--ready-timeout, default 300 s)")
    etcd = next(iter(reports.of_kind("etcd")), None)
    if etcd is not None and etcd.flag("etcdctl"):
        members = members_of(etcd.data)
        started = {m.address for m in members if m.name}
        absent = [m for m in masters if m not in started]
        if absent:
            listed_members = "; ".join(m.describe() for m in members) or "none"
            problems.append(f"etcd does not list {', '.join(absent)} as started members (members: {listed_members})")
    return problems
