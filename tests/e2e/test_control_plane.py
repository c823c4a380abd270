"""The example base makes a small real control plane: stacked etcd on every master, an API server
that keeps its objects in it, a kubelet per host posting its Node, kubectl that reads them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir, host_state, run_cluster, standin_log
from tests.helpers import Sealer

CLUSTER = "cp"
ETCDCTL = (
    "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt"
    " --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key"
)
# what a node's kubelet may read with its own credentials
NODE_KUBECTL = "kubectl --kubeconfig /etc/kubernetes/kubelet.conf"
MADE = ("/etc/kubernetes", "/var/lib/etcd", "/var/lib/kubelet", "/usr/local/bin/kubectl", "/usr/local/bin/etcdctl",
        "/etc/systemd/system/etcd.service", "/etc/systemd/system/kube-apiserver.service",
        "/etc/systemd/system/kubelet.service", "/etc/profile.d/etcdctl.sh")  # fmt: skip


def poll(what: str, probe: Callable[[], Any], timeout: float) -> tuple[Any, float]:
    """The probe's first true answer and how long it took; fails after ``timeout`` seconds."""
    start = time.monotonic()
    last: Any = None
    while time.monotonic() - start < timeout:
        last = probe()
        if last:
            return last, time.monotonic() - start
        time.sleep(2)
    raise AssertionError(f"{what} within {timeout:.0f} s; last: {last}")


def nodes(host: SandboxHost, kubectl: str = NODE_KUBECTL) -> dict[str, dict[str, Any]]:
    proc = host.ssh(f"{kubectl} get nodes -o json", check=False)
    if proc.returncode != 0:
        return {}
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "List"
    return {n["metadata"]["name"]: n for n in doc["items"]}


def is_ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def internal_ip(node: dict[str, Any]) -> str:
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


def test_three_masters_and_two_nodes_make_a_working_control_plane(run_store: Sealer, sandbox: Sandbox) -> None:
    masters, workers = sandbox.hosts[:3], sandbox.hosts[3:]  # amd64, arm64, amd64; arm64, arm64
    hosts = masters + workers
    before = {h.address: host_state(h) for h in hosts}
    started = time.monotonic()
    run_cluster(run_store, CLUSTER, masters, workers)
    print(f"sealer run of 3 masters and 2 nodes: {time.monotonic() - started:.0f} s")

    # stacked etcd: one member per master, each added through an existing one, all healthy
    members = json.loads(masters[1].ssh(f"{ETCDCTL} member list -w json").stdout)["members"]
    assert sorted((m["name"], m["peerURLs"]) for m in members) == sorted(
        (h.name, [f"https://{h.address}:2380"]) for h in masters
    )
    health = masters[0].ssh(f"{ETCDCTL} endpoint health --cluster 2>&1").stdout  # it reports on stderr
    assert health.count(" is healthy") == 3, health
    for master in masters[1:]:
        joins = [c for _t, c in standin_log(master, CLUSTER) if c.startswith("kubeadm") and " join " in c]
        assert len(joins) == 1 and "--control-plane --certificate-key ***" in joins[0], joins  # no secret logged

    # every host's kubelet registered its Node; a node's own credentials read them all
    want = {h.name: h for h in hosts}
    listed, took = poll("5 Ready nodes", lambda: (n := nodes(workers[0])) and len(n) == 5 and all(
        is_ready(x) for x in n.values()) and n, timeout=90)  # fmt: skip
    print(f"5 nodes Ready {took:.0f} s after the run")
    assert set(listed) == set(want)
    for name, node in listed.items():
        host = want[name]
        assert node["status"]["nodeInfo"]["architecture"] == host.arch
        assert node["metadata"]["labels"]["kubernetes.io/arch"] == host.arch
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.19.8"
        assert internal_ip(node) == host.address
        is_master = host in masters
        assert ("node-role.kubernetes.io/master" in node["metadata"]["labels"]) == is_master
        taints = [t["key"] for t in node["spec"].get("taints", [])]
        assert taints == (["node-role.kubernetes.io/master"] if is_master else [])
    # the image's command applied its manifest through the API: the objects are in etcd
    assert "kubernetes-dashboard" in masters[2].ssh("kubectl get deployments -A").stdout
    assert masters[0].ssh(f"{ETCDCTL} get /registry/deployments/kubernetes-dashboard/kubernetes-dashboard"
                          " --keys-only").stdout.strip()  # fmt: skip
    version = masters[1].ssh("kubectl version -o json").stdout
    assert json.loads(version)["serverVersion"]["gitVersion"] == "v1.19.8"

    # a kubelet that stops posting makes its node NotReady, and Ready again when it is back
    quiet = workers[1]
    quiet.ssh("systemctl stop kubelet.service")
    _, took = poll(f"{quiet.name} NotReady", lambda: not is_ready(nodes(masters[0], "kubectl")[quiet.name]), 60)
    print(f"{quiet.name} NotReady {took:.0f} s after its kubelet stopped")
    table = masters[0].ssh("kubectl get nodes").stdout
    assert any(line.split()[:2] == [quiet.name, "NotReady"] for line in table.splitlines()), table
    quiet.ssh("systemctl start kubelet.service")
    poll(f"{quiet.name} Ready again", lambda: is_ready(nodes(masters[0], "kubectl")[quiet.name]), 60)

    # a master that leaves takes its etcd member with it (kubeadm reset removes it first)
    run_store.run("delete", "-m", masters[2].address, "--cluster", CLUSTER)
    members = json.loads(masters[0].ssh(f"{ETCDCTL} member list -w json").stdout)["members"]
    assert sorted(m["name"] for m in members) == sorted(h.name for h in masters[:2])
    health = masters[1].ssh(f"{ETCDCTL} endpoint health --cluster 2>&1").stdout
    assert health.count(" is healthy") == 2, health
    assert host_state(masters[2]) == before[masters[2].address]
    # a node reaches the masters that stay through its load balancer (tests/e2e/test_ha.py)
    worker = workers[0]
    assert worker.ssh("getent hosts apiserver.cluster.local").stdout.split()[0] == "127.0.0.1"
    # sealer delete removed the master's Node too (kubeadm reset leaves it): four are left
    assert sorted(nodes(worker)) == sorted(h.name for h in [*masters[:2], *workers])

    started = time.monotonic()
    run_store.run("delete", "--all", "--cluster", CLUSTER)
    print(f"sealer delete --all: {time.monotonic() - started:.0f} s")
    assert not cluster_dir(run_store, CLUSTER).exists()
    for host in hosts:
        units = host.ssh("systemctl is-active etcd.service kube-apiserver.service kubelet.service", check=False)
        assert "active\n" not in units.stdout.replace("inactive", ""), (host.address, units.stdout)
        left = host.ssh(f"ls -d {' '.join(MADE)} 2>/dev/null", check=False).stdout
        assert not left, (host.address, left)
        assert host_state(host) == before[host.address], f"{host.address} is not as it was before the run"
