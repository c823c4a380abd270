"""The example base's control plane and the membership that keeps it healthy, on one cluster (the
sandbox boots once and a multi-master cluster is the costly part): run and join wait for Ready
nodes and give every master a stacked etcd member; every kubelet registers its Node with its true
architecture; ps reads the API; delete drains, keeps etcd's quorum, removes an unreachable master
with --force, master0 hands its duties (the registry, the API server the nodes reach) to a master
that stays, and delete --all leaves every host as it was."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import yaml

from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir, host_state, run_cluster, sandbox_cli, standin_log
from tests.e2e.control_plane import ETCDCTL, MADE, NODE_KUBECTL, internal_ip, is_ready, nodes, poll
from tests.helpers import Sealer

CLUSTER = "member"
DASHBOARD = "kubernetesui/dashboard:v2.5.1"
DATA = f"/var/lib/sealer/data/{CLUSTER}"


def members(host: SandboxHost) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(host.ssh(f"{ETCDCTL} member list -w json").stdout)["members"]
    return found


def healthy(host: SandboxHost) -> int:
    return host.ssh(f"{ETCDCTL} endpoint health --cluster 2>&1", check=False).stdout.count(" is healthy")


def ps(store: Sealer) -> dict[str, dict[str, Any]]:
    clusters = json.loads(store.run("ps", "--cluster", CLUSTER, "--output", "json").stdout)
    return {h["address"]: h for h in clusters[0]["hosts"]}


def saved_hosts(store: Sealer) -> list[str]:
    """The hosts of the saved Clusterfile, in its order (master0 first)."""
    saved = yaml.safe_load((cluster_dir(store, CLUSTER) / "Clusterfile").read_text())
    return [ip for group in saved["spec"]["hosts"] for ip in group["ips"]]


def timed(what: str, started: float) -> float:
    now = time.monotonic()
    print(f"{what}: {now - started:.0f} s")
    return now


# what a run puts on a host, outside the cluster's data directory (control_plane.MADE and the
# image's containerd, sealer's hosts.toml directories)
LEFT = (*MADE, "/etc/containerd", "/var/lib/containerd", "/usr/local/bin/containerd", "/var/lib/sealer")


def clean_forced_host(host: SandboxHost) -> None:
    """What --force left on a host it could not reach, removed once it is back, as sealer's reset
    role does it (kubeadm reset, the image's clean script, sealer's files and directories), so
    that the sandbox serves the next tests as it was."""
    host.ssh(
        f"cd {DATA}/rootfs && PATH=$PWD/bin:$PATH kubeadm reset -f >/dev/null 2>&1;"
        # every master serves a replica of the registry (docs/ha.md): its unit goes too
        f" systemctl disable --now sealer-registry-{CLUSTER}.service >/dev/null 2>&1;"
        f" rm -f /etc/systemd/system/sealer-registry-{CLUSTER}.service && systemctl daemon-reload;"
        " sh scripts/clean.sh >/dev/null 2>&1;"
        f" cd / && rm -rf {DATA} /var/lib/sealer/data/.cluster"
        " && rmdir /var/lib/sealer/data /var/lib/sealer 2>/dev/null;"
        " grep -v -e ' sea.hub$' -e ' apiserver.cluster.local$' /etc/hosts > /tmp/hosts.new && cat /tmp/hosts.new"
        " > /etc/hosts && rm -f /tmp/hosts.new; for d in /etc/containerd/certs.d/*/; do"
        f" grep -qs 'for cluster {CLUSTER};' $d/hosts.toml && rm -f $d/hosts.toml; rmdir $d 2>/dev/null; done;"
        " rmdir /etc/containerd/certs.d /etc/containerd /etc/docker/certs.d /etc/docker 2>/dev/null; true"
    )  # fmt: skip
    left = host.ssh(f"ls -d {' '.join(LEFT)} 2>/dev/null", check=False).stdout
    assert not left, f"{host.address} keeps {left}"
    assert "sea.hub" not in host.ssh("cat /etc/hosts").stdout


def test_membership_keeps_etcd_and_the_api_healthy(run_store: Sealer, sandbox: Sandbox) -> None:
    m1, m2, m3, n4, n5 = sandbox.hosts  # amd64, arm64, amd64; arm64, arm64
    before = {h.address: host_state(h) for h in sandbox.hosts}
    begun = started = time.monotonic()
    stopped = False
    try:
        run_cluster(run_store, CLUSTER, [m1], [n4, n5])
        started = timed("run of 1 master and 2 nodes (waits for 3 Ready nodes)", started)
        assert [m["name"] for m in members(m1)] == [m1.name]
        # two masters join the one-master cluster: each a new etcd member; join waits until they are Ready
        run_store.run("join", "-m", f"{m2.address},{m3.address}", "--cluster", CLUSTER)
        started = timed("join of two masters", started)
        # stacked etcd: one member per master, each added through an existing one, all healthy
        assert sorted((m["name"], m["peerURLs"]) for m in members(m3)) == sorted(
            (h.name, [f"https://{h.address}:2380"]) for h in (m1, m2, m3)
        )
        listed = nodes(m1, "kubectl")
        assert is_ready(listed[m2.name]) and is_ready(listed[m3.name])  # no poll: join returned once they were
        assert healthy(m1) == 3
        for master in (m2, m3):
            joins = [c for _t, c in standin_log(master, CLUSTER) if c.startswith("kubeadm") and " join " in c]
            assert len(joins) == 1 and "--control-plane --certificate-key ***" in joins[0], joins  # no secret logged

        # a node's own credentials list 5 Ready nodes, with their true architectures, versions,
        # addresses, labels and the masters' taint
        listed = nodes(n4, NODE_KUBECTL)
        assert set(listed) == {h.name for h in sandbox.hosts}
        for host in sandbox.hosts:
            node = listed[host.name]
            assert is_ready(node), host.name
            assert node["status"]["nodeInfo"]["architecture"] == host.arch
            assert node["metadata"]["labels"]["kubernetes.io/arch"] == host.arch
            assert node["metadata"]["labels"]["kubernetes.io/hostname"] == host.name
            assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.19.8"
            assert internal_ip(node) == host.address
            is_master = host in (m1, m2, m3)
            assert ("node-role.kubernetes.io/master" in node["metadata"]["labels"]) == is_master
            taints = [t["key"] for t in node["spec"].get("taints", [])]
            assert taints == (["node-role.kubernetes.io/master"] if is_master else [])
        # the image's command applied its manifest through the API: the objects are in etcd
        assert "kubernetes-dashboard" in m3.ssh("kubectl get deployments -A").stdout
        assert m1.ssh(f"{ETCDCTL} get /registry/deployments/kubernetes-dashboard/kubernetes-dashboard"
                      " --keys-only").stdout.strip()  # fmt: skip
        assert json.loads(m2.ssh("kubectl version -o json").stdout)["serverVersion"]["gitVersion"] == "v1.19.8"

        # sealer ps reads the API: role, platform, Ready, version, scheduling per host
        rows = ps(run_store)
        assert {a: (r["role"], r["platform"].split("/")[1], r["ready"], r["kubeletVersion"], r["schedulable"])
                for a, r in rows.items()} == {
            h.address: ("master" if h in (m1, m2, m3) else "node", h.arch, True, "v1.19.8", True)
            for h in sandbox.hosts
        }  # fmt: skip
        table = run_store.run("ps", "--cluster", CLUSTER).stdout
        assert any(line.split()[2:3] == [n5.address] and "Ready" in line.split() for line in table.splitlines())
        # a kubelet that stops posting: ps shows its node NotReady within 60 s
        n5.ssh("systemctl stop kubelet.service")
        _, took = poll(f"ps showing {n5.name} NotReady", lambda: ps(run_store)[n5.address]["ready"] is False, 60)
        print(f"ps showed {n5.name} NotReady {took:.0f} s after its kubelet stopped")
        table = m1.ssh("kubectl get nodes").stdout
        assert any(line.split()[:2] == [n5.name, "NotReady"] for line in table.splitlines()), table
        n5.ssh("systemctl start kubelet.service")
        poll(f"{n5.name} Ready again", lambda: is_ready(nodes(m1, "kubectl")[n5.name]), 60)
        started = time.monotonic()

        # the third master's host goes down: deleting the second would leave 1 healthy of 2 members
        assert sandbox_cli("stop", sandbox.name, m3.address).returncode == 0
        stopped = True
        refused = run_store.run("delete", "-m", m2.address, "--cluster", CLUSTER, check=False)
        assert refused.returncode == 1 and "quorum" in refused.stderr, refused.stderr
        assert f"{m3.name} ({m3.address}): unhealthy" in refused.stderr and f"{m2.name} ({m2.address}): healthy" in (
            refused.stderr)  # fmt: skip
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
        assert len(members(m1)) == 3 and m2.address in saved_hosts(run_store)  # nothing changed
        started = timed("delete refused for quorum", started)
        unreachable = run_store.run("delete", "-m", m3.address, "--cluster", CLUSTER, check=False)
        assert unreachable.returncode == 1 and "--force" in unreachable.stderr, unreachable.stderr
        started = timed("delete of an unreachable master refused without --force", started)
        run_store.run("delete", "-m", m3.address, "--cluster", CLUSTER, "--force")
        started = timed("delete --force of the unreachable master", started)
        assert sorted(m["name"] for m in members(m1)) == sorted([m1.name, m2.name])
        assert healthy(m1) == 2
        assert m3.name not in nodes(m1, "kubectl")

        # master0 leaves: the second master takes its duties (the registry, the API the nodes reach)
        run_store.run("delete", "-m", m1.address, "--cluster", CLUSTER)
        started = timed("delete of master0 with the handover", started)
        assert [m["name"] for m in members(m2)] == [m2.name]
        assert saved_hosts(run_store)[0] == m2.address  # the new master0, first in the saved Clusterfile
        inventory = yaml.safe_load((cluster_dir(run_store, CLUSTER) / "inventory.yaml").read_text())
        assert inventory["all"]["vars"]["sealer_registry_host"] == m2.address
        assert n4.ssh("getent hosts sea.hub").stdout.split()[0] == m2.address
        assert n4.ssh("getent hosts apiserver.cluster.local").stdout.split()[0] == m2.address
        assert m1.ssh(f"test -e {DATA}", check=False).returncode == 1  # master0 was reset
        skopeo = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                 f"docker://{m2.address}:5000/{DASHBOARD}"],
                                check=False, capture_output=True, text=True)  # fmt: skip
        assert skopeo.returncode == 0, skopeo.stderr
        assert set(nodes(n4, NODE_KUBECTL)) == {m2.name, n4.name, n5.name}
        assert m2.ssh(f"test -e {DATA}/app-*.done").returncode == 0  # the CMDs will not run again

        # a node leaves: drained first (through the master that stays), then gone from the API
        run_store.run("delete", "-n", n5.address, "--cluster", CLUSTER)
        started = timed("delete of a node", started)
        # (v1.19.8: --delete-local-data; master0 was drained through it too)
        drains = [c.partition(" drain ")[2] for _t, c in standin_log(m2, CLUSTER) if " drain " in c]
        assert drains == [f"{h.name} --ignore-daemonsets --delete-local-data --timeout=300s" for h in (m1, n5)]
        assert set(nodes(m2, "kubectl")) == {m2.name, n4.name}
        assert set(ps(run_store)) == {m2.address, n4.address}
        assert host_state(m1) == before[m1.address] and host_state(n5) == before[n5.address]

        started = time.monotonic()
        run_store.run("delete", "--all", "--cluster", CLUSTER)
        timed("delete --all", started)
        assert not cluster_dir(run_store, CLUSTER).exists()
        for host in (m2, n4):
            units = host.ssh("systemctl is-active etcd.service kube-apiserver.service kubelet.service", check=False)
            assert "active\n" not in units.stdout.replace("inactive", ""), (host.address, units.stdout)
            left = host.ssh(f"ls -d {' '.join(MADE)} 2>/dev/null", check=False).stdout
            assert not left, (host.address, left)
            assert host_state(host) == before[host.address], f"{host.address} is not as it was before the run"
    finally:
        if stopped:
            sandbox_cli("start", sandbox.name, m3.address)
            clean_forced_host(m3)
        if cluster_dir(run_store, CLUSTER).exists():
            run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)
        print(f"test_membership: {time.monotonic() - begun:.0f} s")
