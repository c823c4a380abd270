"""How hosts leave a cluster that goes on: decided from what the cluster said of itself (the
survey) before anything changes. Nodes leave together, then masters one at a time (those that
cannot be reached first, master0 last); each step is drained, reset and removed through a
master that stays. A deletion that leaves no master, leaves etcd without a healthy majority,
or names a host that cannot be reached (without --force) is refused here, whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sealer.cluster.clusterfile import Cluster
from sealer.cluster.health import drain_data_flag, node_of, quorum_after
from sealer.cluster.survey import ClusterView
from sealer.errors import SealerError


@dataclass(frozen=True)
class Step:
    """Hosts that leave in one run of the delete playbook, and what it is told of them."""

    hosts: tuple[str, ...]
    node_names: dict[str, str] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Removal:
    via: str  # the master that stays and answers, through which every step goes
    steps: tuple[Step, ...]
    drain_data_flag: str

    def extravars(self, step: Step, drain: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sealer_kubernetes_via": self.via,
            "sealer_kubernetes_node_names": step.node_names,
            "sealer_kubernetes_members": step.members,
            "sealer_kubernetes_unreachable": list(step.unreachable),
            "sealer_kubernetes_drain_data_flag": self.drain_data_flag,
        }
        if not drain:
            out["sealer_kubernetes_drain"] = False
        return out


def plural(hosts: list[str], one: str, many: str) -> str:
    return f"{', '.join(hosts)} {one if len(hosts) == 1 else many}"


def plan_removal(cluster: Cluster, targets: list[str], view: ClusterView, hostnames: Mapping[str, str],
                 force: bool) -> Removal:  # fmt: skip
    """The steps that remove ``targets`` from ``cluster``, or a SealerError saying why not."""
    lost = sorted(a for a in targets if a in view.unreachable)
    if lost and not force:
        raise SealerError(
            f"{plural(lost, 'cannot', 'cannot')} be reached: --force removes "
            f"{'it' if len(lost) == 1 else 'them'} from the cluster through the other masters, running nothing on "
            f"{'it' if len(lost) == 1 else 'them'}"
        )
    staying = [h.address for h in cluster.masters if h.address not in targets]
    if view.api is None or view.api not in staying:
        tried = ", ".join(staying)
        raise SealerError(f"no master that stays ({tried}) answered with the cluster's Nodes: nothing can be drained "
                          "or removed through it")  # fmt: skip
    leaving = [h.address for h in cluster.masters if h.address in targets]
    if leaving and view.etcd is not None:
        reason = quorum_after(view.members, set(leaving))
        if reason:
            raise SealerError(f"deleting master {', '.join(leaving)} refused: {reason}")
    members = {m.address: m.id for m in view.members}
    nodes = {a: n.name for a in targets if (n := node_of(view.nodes, a, hostnames.get(a, "")))}

    def step(hosts: list[str]) -> Step:
        return Step(tuple(hosts), {a: nodes[a] for a in hosts if a in nodes},
                    {a: members[a] for a in hosts if a in members}, tuple(a for a in hosts if a in lost))  # fmt: skip

    steps = []
    workers = [h.address for h in cluster.hosts if h.role == "node" and h.address in targets]
    if workers:
        steps.append(step(workers))
    master0 = cluster.masters[0].address
    ordered = sorted(leaving, key=lambda a: (a not in lost, a == master0))
    steps += [step([a]) for a in ordered]
    via_node = node_of(view.nodes, view.api, hostnames.get(view.api, ""))
    return Removal(view.api, tuple(steps), drain_data_flag(via_node.kubelet_version if via_node else ""))


def removal_problems(step: Step, view: ClusterView, hostnames: Mapping[str, str]) -> list[str]:
    """What the cluster still holds of a step's hosts after it: a Node in the API, an etcd member."""
    problems = []
    left = [a for a in step.hosts if node_of(view.nodes, a, hostnames.get(a, "")) is not None]
    if left:
        problems.append(f"{plural(left, 'is', 'are')} still in the API after the deletion")
    members = [m for m in view.members if m.address in step.hosts]
    if members:
        problems.append(f"etcd still lists {'; '.join(m.describe() for m in members)} after the deletion")
    return problems
