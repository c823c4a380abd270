"""After the first run: the registry, kubeadm and the CMDs; join, delete and ps; htpasswd."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Sandbox, cluster_dir, host_state, run_cluster, skopeo_raw, standin_log
from tests.helpers import Sealer

DASHBOARD = "kubernetesui/dashboard:v2.5.1"
CANARY = "Canary-Registry-Pa55"


def served_architectures(address: str, image: str, *options: str) -> list[str]:
    """The architectures a host can pull ``image`` for: the tag serves the upstream index as it
    was (every platform listed), the registry holds only the cluster's platforms' manifests."""
    tls = list(options) or ["--tls-verify=false"]
    return [
        arch for arch in ("amd64", "arm64")
        if subprocess.run(["skopeo", "inspect", *tls, "--override-os", "linux", "--override-arch", arch,
                           f"docker://{address}:5000/{image}"], capture_output=True, check=False).returncode == 0
    ]  # fmt: skip


def test_grow_an_amd64_cluster_with_an_arm64_node_then_shrink_it(run_store: Sealer, sandbox: Sandbox) -> None:
    master, node = sandbox.hosts[2], sandbox.hosts[3]  # amd64, arm64
    before = {h.address: host_state(h) for h in (master, node)}
    run_cluster(run_store, "grow", [master], [])
    assert served_architectures(master.address, DASHBOARD) == ["amd64"]  # an amd64 cluster
    log = standin_log(master, "grow")
    assert [c for _t, c in log if c.startswith("kubeadm")] == [
        "kubeadm[x86_64] init --config /var/lib/sealer/data/grow/kubeadm.yml"
    ]
    joined = json.loads(run_store.run("join", "-n", node.address, "--cluster", "grow", "--output", "json").stdout)
    assert joined["joined"] == [node.address]
    # the registry now serves the new platform too
    assert served_architectures(master.address, DASHBOARD) == ["amd64", "arm64"]
    assert node.ssh("getent hosts sea.hub").stdout.split()[0] == master.address
    assert [c.split()[1] for _t, c in standin_log(node, "grow") if c.startswith("kubeadm")] == ["join"]
    # master0 was not initialised again, the CMDs did not run again
    log2 = standin_log(master, "grow")
    assert len([c for _t, c in log2 if " init --config" in c]) == 1
    assert len([c for _t, c in log2 if c.startswith("helm")]) == 1
    ps = json.loads(run_store.run("ps", "--cluster", "grow", "--output", "json").stdout)
    assert [(h["address"], h["role"], h["platform"]) for h in ps[0]["hosts"]] == [
        (master.address, "master", "linux/amd64"),
        (node.address, "node", "linux/arm64/v8"),
    ]
    run_store.run("delete", "-n", node.address, "--cluster", "grow")
    assert node.ssh("test -e /var/lib/sealer/data/grow", check=False).returncode == 1
    assert [h["address"] for h in json.loads(run_store.run("ps", "--output", "json").stdout)[0]["hosts"]] == [
        master.address
    ]
    run_store.run("delete", "--all", "--cluster", "grow")
    assert not cluster_dir(run_store, "grow").exists()
    for host in (master, node):
        assert host_state(host) == before[host.address], f"{host.address} is not as it was before the first run"
    with pytest.raises(subprocess.CalledProcessError):
        skopeo_raw(master.address, DASHBOARD)  # the registry is stopped


def test_registry_with_htpasswd_credentials(run_store: Sealer, sandbox: Sandbox, tmp_path: Path) -> None:
    host = sandbox.hosts[4]  # an arm64 master alone: its registry is the arm64 binary, through qemu
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(f"""\
apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: secure
spec:
  image: kubernetes-multi-arch:v1.19.8
  ssh:
    pk: {host.key}
  hosts:
    - ips: [{host.address}]
      roles: [master]
  registry:
    username: admin
    password: {CANARY}
    tls: true
  cmd:
    - kubectl apply -f manifests/dashborad.yaml
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
networking:
  podSubnet: 10.244.0.0/16
""")
    run_store.run("run", "-f", str(clusterfile))
    try:
        # TLS with the cluster's own CA: the hosts trust it, skopeo does when given it, not otherwise
        ca = cluster_dir(run_store, "secure") / "tls" / "ca.crt"
        assert host.ssh("cat /etc/docker/certs.d/sea.hub:5000/ca.crt").stdout == ca.read_text()
        assert host.ssh("cat /etc/containerd/certs.d/sea.hub:5000/ca.crt").stdout == ca.read_text()
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_text(ca.read_text())
        url = f"docker://{host.address}:5000/{DASHBOARD}"
        untrusted = subprocess.run(["skopeo", "inspect", "--raw", "--creds", f"admin:{CANARY}", url],
                                   capture_output=True, text=True, check=False)  # fmt: skip
        assert untrusted.returncode != 0 and "certificate" in untrusted.stderr.lower()
        denied = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", str(certs), url],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert denied.returncode != 0 and "unauthorized" in denied.stderr.lower()
        # the tag serves the upstream index as it was; the registry holds the arm64 image of it
        seen = subprocess.run(
            ["skopeo", "inspect", "--cert-dir", str(certs), "--creds", f"admin:{CANARY}", "--override-arch", "arm64",
             url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert json.loads(seen)["Architecture"] == "arm64"
        assert served_architectures(host.address, DASHBOARD, "--cert-dir", str(certs), "--creds",
                                    f"admin:{CANARY}") == ["arm64"]  # fmt: skip
        # the Clusterfile's kubeadm document was merged into the image's
        kubeadm = host.ssh("cat /var/lib/sealer/data/secure/kubeadm.yml").stdout
        assert "podSubnet: 10.244.0.0/16" in kubeadm and "kubernetesVersion: v1.19.8" in kubeadm
        # spec.cmd replaces the image's CMDs
        # (sealer's own kubectl calls, with the admin kubeconfig, wait for Ready nodes)
        calls = [
            c for _t, c in standin_log(host, "secure") if c.startswith(("helm", "kubectl")) and "--kubeconfig" not in c
        ]
        assert calls == ["kubectl[aarch64] apply -f manifests/dashborad.yaml"]
        # the password is nowhere: not in the cluster's state, its ansible-runner artifacts, or on the host
        leaks = subprocess.run(
            ["grep", "-rl", CANARY, str(run_store.root)], capture_output=True, text=True, check=False
        )
        assert leaks.stdout == ""
        assert host.ssh(f"grep -rl {CANARY} /var/lib/sealer /etc /tmp", check=False).stdout == ""
        assert (cluster_dir(run_store, "secure") / "htpasswd").stat().st_mode & 0o777 == 0o600
        assert (cluster_dir(run_store, "secure") / "tls" / "ca.key").stat().st_mode & 0o777 == 0o600
        assert host.ssh("stat -c %a /var/lib/sealer/data/secure/tls/registry.key").stdout.strip() == "600"
        # an unchanged re-run keeps the certificate and the running registry
        again = json.loads(run_store.run("run", "-f", str(clusterfile), "--output", "json").stdout)
        assert [h["changed"] for h in again["hosts"]] == [0]
    finally:
        run_store.run("delete", "--all", "--cluster", "secure")
    assert host.ssh("ls /etc/docker/certs.d/sea.hub:5000", check=False).returncode != 0
