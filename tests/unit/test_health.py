"""What the API and etcd say of the hosts: the rule that finds a host's Node (written twice, in
sealer/cluster/health.py and the collection's filter plugin, held here to one table), etcd's
members and their health, the quorum a deletion leaves, and the plan a deletion follows."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sealer.cluster.clusterfile import Cluster, Host, SSHConfig
from sealer.cluster.health import (
    NodeStatus,
    drain_data_flag,
    joined_problems,
    members_of,
    nodes_of,
    not_ready,
    quorum_after,
)
from sealer.cluster.membership import delete_targets
from sealer.cluster.removal import plan_removal, removal_problems
from sealer.cluster.results import HostReport, Reports
from sealer.cluster.survey import ClusterView
from sealer.errors import SealerError
from sealer.oci.reference import Reference

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "nodes.py"


def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sealer_cluster_filter_nodes", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def node(name: str, ip: str | None, ready: str = "True", version: str = "v1.19.8", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}] if ip else [{"type": "Hostname", "address": name}],
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}],
            "nodeInfo": {"kubeletVersion": version, "architecture": "arm64"},
        },
    }


NODES = {"kind": "List", "items": [
    node("m1", "10.0.0.1"),
    node("n1", "10.0.0.2", ready="Unknown"),
    node("other-name", "10.0.0.3"),
    node("byname", None),
    node("lower", None, ready="False"),
]}  # fmt: skip
# (address, hostname, not Ready)
TABLE = [
    ("10.0.0.1", "m1", False),
    ("10.0.0.2", "n1", True),  # NotReady
    ("10.0.0.3", "whatever", False),  # found by its InternalIP
    ("10.0.0.4", "ByName", False),  # no InternalIP: found by its name, in lowercase
    ("10.0.0.5", "lower", True),
    ("10.0.0.6", "gone", True),  # no Node at all
    ("10.0.0.7", "", True),
]


@pytest.mark.parametrize(("address", "hostname", "missing"), TABLE)
def test_a_hosts_node_by_both_rules(address: str, hostname: str, missing: bool) -> None:
    assert (not_ready(NODES, {address: hostname}) == [address]) is missing
    assert (plugin().FilterModule().filters()["nodes_not_ready"](NODES, [address], [hostname]) == [address]) is missing


@pytest.mark.parametrize("document", [None, {}, {"items": None}, {"items": ["x", {"metadata": None}]}, "text"])
def test_anything_but_a_node_list_has_no_ready_node(document: Any) -> None:
    assert not_ready(document, {"10.0.0.1": "m1"}) == ["10.0.0.1"]
    assert plugin().nodes_not_ready(document, ["10.0.0.1"], ["m1"]) == ["10.0.0.1"]


def etcd(*members: tuple[int, str, str, bool | None]) -> dict[str, Any]:
    """An etcd report: (id, name, address, healthy) each; health None is not in the health list."""
    return {
        "v": 1, "etcdctl": True,
        "members": {"header": {}, "members": [
            {"ID": i, "name": n, "peerURLs": [f"https://{a}:2380"], "clientURLs": [f"https://{a}:2379"] if n else []}
            for i, n, a, _h in members
        ]},
        "health": [{"endpoint": f"https://{a}:2379", "health": bool(h), **({} if h else {"error": "deadline exceeded"})}
                   for _i, _n, a, h in members if h is not None],
    }  # fmt: skip


THREE = etcd((1, "m1", "10.0.0.1", True), (2, "m2", "10.0.0.2", True), (3, "m3", "10.0.0.3", False))


def test_members_and_their_health() -> None:
    found = members_of(THREE)
    assert [(m.id, m.address, m.healthy) for m in found] == [(1, "10.0.0.1", True), (2, "10.0.0.2", True),
                                                            (3, "10.0.0.3", False)]  # fmt: skip
    assert found[2].describe() == "m3 (10.0.0.3): unhealthy (deadline exceeded)"
    unstarted = members_of(etcd((4, "", "10.0.0.4", None)))[0]
    assert unstarted.state == "not started"
    assert members_of({"health": None}) == []


def test_a_deletion_that_leaves_no_healthy_majority_is_named_with_every_member() -> None:
    three = members_of(THREE)
    refusal = quorum_after(three, {"10.0.0.2"})
    assert refusal is not None and "1 of the 2 members left would be healthy, 2 are needed" in refusal
    assert "m3 (10.0.0.3): unhealthy" in refusal and "m1 (10.0.0.1): healthy" in refusal
    assert quorum_after(three, {"10.0.0.3"}) is None  # 2 of 2 healthy
    assert quorum_after(three, {"10.0.0.1", "10.0.0.3"}) is None  # 1 of 1
    assert quorum_after(three, set()) is None  # 2 of 3 healthy
    assert quorum_after(three, {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) is None  # nothing left to keep


FLAGS = [("v1.19.8", "--delete-local-data"), ("v1.20.15", "--delete-emptydir-data"),
         ("v1.28.0", "--delete-emptydir-data"), ("", "--delete-emptydir-data")]  # fmt: skip


@pytest.mark.parametrize(("version", "flag"), FLAGS)
def test_drains_emptydir_flag_follows_the_version(version: str, flag: str) -> None:
    assert drain_data_flag(version) == flag


def cluster(*hosts: tuple[str, str], registry: str | None = None) -> Cluster:
    ssh = SSHConfig()
    return Cluster("c", Reference.parse("img:1"), ssh, [Host(a, r, ssh) for a, r in hosts], registry=registry)


FIVE = cluster(("10.0.0.1", "master"), ("10.0.0.2", "master"), ("10.0.0.3", "master"), ("10.0.0.4", "node"),
               ("10.0.0.5", "node"))  # fmt: skip
NAMES = {f"10.0.0.{i}": f"h{i}" for i in range(1, 6)}


def view(
    members: dict[str, Any] = THREE, api: str = "10.0.0.1", unreachable: frozenset[str] = frozenset()
) -> ClusterView:
    items = [node(f"h{i}", f"10.0.0.{i}") for i in range(1, 6)]
    return ClusterView(api, listed_nodes(items), "10.0.0.1", members_of(members), set(unreachable))


def listed_nodes(items: list[dict[str, Any]]) -> list[NodeStatus]:
    return nodes_of({"items": items})


def test_nodes_leave_together_then_masters_one_at_a_time_unreachable_first_master0_last() -> None:
    healthy = etcd((1, "h1", "10.0.0.1", True), (2, "h2", "10.0.0.2", True), (3, "h3", "10.0.0.3", True))
    seen = view(healthy, api="10.0.0.2", unreachable=frozenset({"10.0.0.3"}))
    plan = plan_removal(FIVE, ["10.0.0.1", "10.0.0.4", "10.0.0.3", "10.0.0.5"], seen, NAMES, force=True)
    assert plan.via == "10.0.0.2"
    assert [s.hosts for s in plan.steps] == [("10.0.0.4", "10.0.0.5"), ("10.0.0.3",), ("10.0.0.1",)]
    assert plan.steps[1].unreachable == ("10.0.0.3",) and plan.steps[1].members == {"10.0.0.3": 3}
    assert plan.steps[0].node_names == {"10.0.0.4": "h4", "10.0.0.5": "h5"} and plan.steps[0].members == {}
    assert plan.drain_data_flag == "--delete-local-data"
    extravars = plan.extravars(plan.steps[1], drain=False)
    assert extravars["sealer_kubernetes_via"] == "10.0.0.2" and extravars["sealer_kubernetes_drain"] is False
    assert "sealer_kubernetes_drain" not in plan.extravars(plan.steps[0], drain=True)


def test_a_deletion_is_refused_whole_before_anything_changes() -> None:
    with pytest.raises(SealerError, match=r"^deleting master 10.0.0.2 refused: etcd would lose quorum"):
        plan_removal(FIVE, ["10.0.0.2"], view(unreachable=frozenset({"10.0.0.3"})), NAMES, force=False)
    with pytest.raises(SealerError, match=r"^10.0.0.3 cannot be reached: --force removes it"):
        plan_removal(FIVE, ["10.0.0.3"], view(unreachable=frozenset({"10.0.0.3"})), NAMES, force=False)
    with pytest.raises(SealerError, match=r"no master that stays"):
        plan_removal(FIVE, ["10.0.0.1"], view(api="10.0.0.1"), NAMES, force=False)
    with pytest.raises(SealerError, match=r"deleting every master of cluster c while nodes 10.0.0.4, 10.0.0.5 stay"):
        delete_targets(FIVE, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], handover=True)
    with pytest.raises(SealerError, match=r"10.0.0.1 is master0: delete --all"):
        delete_targets(FIVE, ["10.0.0.1"])  # the collection's own delete playbook hands nothing over
    assert delete_targets(FIVE, ["10.0.0.1"], handover=True) == ["10.0.0.1"]


def test_what_a_deletion_left_behind_is_named() -> None:
    plan = plan_removal(FIVE, ["10.0.0.3"], view(), NAMES, force=False)
    after = view(etcd((1, "h1", "10.0.0.1", True), (3, "h3", "10.0.0.3", True)))
    assert removal_problems(plan.steps[0], after, NAMES) == [
        "10.0.0.3 is still in the API after the deletion",
        "etcd still lists h3 (10.0.0.3): healthy after the deletion",
    ]


def test_a_run_names_the_hosts_that_joined_and_are_not_ready() -> None:
    reports = Reports()
    for address, joined in (("10.0.0.1", False), ("10.0.0.2", True), ("10.0.0.6", False)):
        reports.add(HostReport(address, "kubernetes-state", {"v": 1, "joined": joined}))
    hostnames = {"10.0.0.1": "m1", "10.0.0.2": "n1", "10.0.0.6": "gone"}
    assert joined_problems(reports, hostnames, ["10.0.0.1"]) == [
        "not Ready in the API in time (master0's API did not answer): 10.0.0.1 (no Node), 10.0.0.6 (no Node)"
        " (--ready-timeout, default 300 s)"
    ]
    reports.add(HostReport("10.0.0.1", "nodes", {"v": 1, "document": NODES}))
    reports.add(HostReport("10.0.0.1", "etcd", etcd((1, "m1", "10.0.0.1", True))))
    assert joined_problems(reports, hostnames, ["10.0.0.1"]) == [
        "not Ready in the API in time: 10.0.0.6 (no Node) (--ready-timeout, default 300 s)"
    ]
    assert joined_problems(reports, {"10.0.0.1": "m1"}, ["10.0.0.1", "10.0.0.9"]) == [
        "etcd does not list 10.0.0.9 as started members (members: m1 (10.0.0.1): healthy)"
    ]
