"""The larger mixed case: two masters and three nodes, both platforms, reached as a sudo user
with root login refused (as on a fleet made from cloud images): every change goes through sudo."""

from __future__ import annotations

import json

from tests.e2e.conftest import SUDO_USER, Sandbox, SandboxHost, root_login_refused, run_cluster, skopeo_raw, standin_log
from tests.e2e.test_run import ELF_MACHINE, ROOTFS, TREE_HASH, elf_machine
from tests.helpers import Sealer


def test_mixed_cluster_two_masters_three_nodes(run_store: Sealer, sandbox: Sandbox) -> None:
    h = sandbox.hosts
    with root_login_refused(h):
        for host in h:
            as_root = SandboxHost(host.name, host.address, host.platform, host.key, user="root")
            assert as_root.ssh("true", check=False).returncode == 255, "root can still log in"
        run_as_sudo_user(run_store, h)


def run_as_sudo_user(run_store: Sealer, h: list[SandboxHost]) -> None:
    result = json.loads(run_cluster(run_store, "mixed", [h[0], h[1]], [h[2], h[3], h[4]], "-u", SUDO_USER).stdout)
    assert [x["platform"] for x in result["hosts"]] == [
        "linux/amd64", "linux/arm64/v8", "linux/amd64", "linux/arm64/v8", "linux/arm64/v8",
    ]  # fmt: skip
    root = ROOTFS.format(cluster="mixed")
    trees = {host.address: host.ssh(TREE_HASH.format(root=root)).stdout.split()[0] for host in h}
    amd = {trees[x.address] for x in h if x.arch == "amd64"}
    arm = {trees[x.address] for x in h if x.arch == "arm64"}
    assert len(amd) == 1 and len(arm) == 1, "hosts of one platform must get identical trees"
    assert amd != arm
    for host in h:
        assert elf_machine(host, f"{root}/bin/helm") == ELF_MACHINE[host.arch]
        # what went through sudo is root's, as in a root run: nothing of the login user's
        assert host.ssh("find /var/lib/sealer /etc/hosts ! -user root | head -3").stdout == "", host.address
    assert h[4].ssh(f"{root}/bin/helm version").stdout.count("arm64") == 1
    try:
        logs = {host.address: standin_log(host, "mixed") for host in h}
        kubeadm = {a: [c for _t, c in log if c.startswith("kubeadm")] for a, log in logs.items()}
        assert [c.split()[1] for c in kubeadm[h[0].address] if "upload-certs" not in c] == ["init"]
        assert len([c for c in kubeadm[h[1].address] if " join " in c and "--control-plane" in c]) == 1
        for node in h[2:]:
            joins = [c for c in kubeadm[node.address] if " join " in c]
            assert len(joins) == 1 and "--control-plane" not in joins[0]
        # the CMDs ran on master0 only, in order, after every join (sealer's own kubectl calls, with
        # the admin kubeconfig, wait for Ready nodes)
        cmds = [(t, c) for t, c in logs[h[0].address] if c.startswith(("helm", "kubectl")) and "--kubeconfig" not in c]
        assert [c.split("]")[0] for _t, c in cmds] == ["helm[amd64", "kubectl[x86_64"]
        last_join = max(t for log in logs.values() for t, c in log if " join " in c)
        assert cmds[0][0] >= last_join
        for host in h[1:]:
            assert not [c for _t, c in logs[host.address] if c.startswith(("helm", "kubectl"))]
        # the registry on master0 serves both platforms of every cached image
        index = skopeo_raw(h[0].address, "kubernetesui/dashboard:v2.5.1")
        assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]  # type: ignore[attr-defined]
    finally:
        run_store.run("delete", "--all", "--cluster", "mixed")
    for host in h:
        assert host.ssh("test -e /var/lib/sealer", check=False).returncode == 1, host.address
