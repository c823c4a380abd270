"""The collection's playbooks without the sealer command: ``ansible-playbook -i INVENTORY
sealer.cluster.run -e sealer_image=NAME`` (the collection installed offline, the sealer package
importable) leaves every host as ``sealer run -i INVENTORY`` does, and ``sealer.cluster.delete``
as ``sealer delete`` does; each front door works on a cluster the other made."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir
from tests.helpers import Sealer

IMAGE = "kubernetes-multi-arch:v1.19.8"
CLUSTER = "front"
BIN = Path(sys.executable).parent
# where sealer puts its files on a host: every file's digest is compared there
SEALER_FILES = "/var/lib/sealer /etc/systemd/system /etc/docker /etc/containerd /etc/kubernetes /etc/hosts"


def tree(host: SandboxHost) -> str:
    """Each path's type, mode and owners (Ansible's scratch space, caches and logs aside), the
    digest of every file where sealer puts files, and the stand-ins' calls without their times."""
    listing = host.ssh(
        "find / -xdev \\( -path /tmp -o -path /proc -o -path /var/cache -o -path /var/log -o -path /run/log \\)"
        " -prune -o -printf '%p %y %m %u %g\\n' | sort"
    ).stdout
    digests = host.ssh(
        f"for p in {SEALER_FILES}; do [ -e $p ] && find $p -type f -print0 | xargs -0 -r sha256sum; done | sort -k2"
    ).stdout
    # the cluster's keys and certificates (and the kubeconfigs that hold them) are new at every
    # kubeadm init: their paths and modes are compared, and the CA hash a join was given is masked;
    # the registry's configuration holds the cluster's HTTP secret, random per cluster: it is
    # compared without it
    digests = "\n".join(
        line for line in digests.splitlines()
        if not line.endswith(("standin-calls.log", "/registry.yml")) and "  /etc/kubernetes/" not in line
    )  # fmt: skip
    config = host.ssh(f"grep -v '^  secret: ' /var/lib/sealer/data/{CLUSTER}/registry.yml 2>/dev/null || true").stdout
    digests += "\nregistry.yml without its secret: " + hashlib.sha256(config.encode()).hexdigest()
    calls = host.ssh(f"cat /var/lib/sealer/data/{CLUSTER}/standin-calls.log 2>/dev/null || true").stdout
    calls = re.sub(r"sha256:[0-9a-f]{64}", "sha256:(the CA's hash)", calls)
    calls = "\n".join(line.partition(" ")[2] for line in calls.splitlines())
    return f"{listing}\n{digests}\n{calls}"


def write_inventory(path: Path, master: SandboxHost, node: SandboxHost, key: str) -> Path:
    """An operator's inventory: host names with ansible_host, kubespray's group names."""
    path.mkdir(parents=True)
    (path / "hosts.yaml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": key},
        "children": {
            "kube_control_plane": {"hosts": {"cp-1": {"ansible_host": master.address}}},
            "kube_node": {"hosts": {"worker-1": {"ansible_host": node.address, "team": "edge"}}},
        },
    }}))  # fmt: skip
    return path / "hosts.yaml"


def ansible_playbook(store: Sealer, collections: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook as an operator runs it: from a directory of their own, sealer's store by
    its environment variable, the collection from where ansible-galaxy installed it."""
    env = {**store.env(), "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(BIN / "ansible-playbook"), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          check=False)  # fmt: skip


def differences(before: str, after: str) -> list[str]:
    old, new = set(before.splitlines()), set(after.splitlines())
    return sorted(f"- {line}" for line in old - new) + sorted(f"+ {line}" for line in new - old)


def test_the_playbooks_leave_the_hosts_as_the_sealer_command_does(
    run_store: Sealer, sandbox: Sandbox, collections: Path, tmp_path: Path
) -> None:
    master, node = sandbox.hosts[0], sandbox.hosts[1]  # amd64, arm64
    hosts = (master, node)
    inventory = write_inventory(tmp_path / "mycluster", master, node, sandbox.key)
    cwd = tmp_path
    # the operator's own Ansible settings, as kubespray's users keep them
    (cwd / "ansible.cfg").write_text("[ssh_connection]\npipelining = True\n")
    try:
        # sealer run -i, then the delete playbook on the cluster it made
        run_store.run("run", IMAGE, "-i", str(inventory), "--cluster", CLUSTER)
        by_command = {h.address: tree(h) for h in hosts}
        assert master.ssh("cat /var/lib/sealer/data/.cluster").stdout == f"{CLUSTER}\n"
        # one cluster per host: another cluster's run, join or playbook on a host of this one is
        # refused before any change, naming the host and this cluster; no state of it is left
        other = run_store.run("run", IMAGE, "-m", master.address, "-n", node.address, "--pk", sandbox.key,
                              "--cluster", "other", check=False)  # fmt: skip
        assert other.returncode == 1, other.stdout + other.stderr
        assert f"{master.address}: belongs to cluster {CLUSTER} " in other.stderr, other.stderr
        assert f"{node.address}: belongs to cluster {CLUSTER} " in other.stderr, other.stderr
        assert not cluster_dir(run_store, "other").exists()
        for name, extra in (("empty", "sealer_cluster="), ("mangled", "sealer_cluster=front b"),
                            ("absent", f"sealer_image={IMAGE}")):  # fmt: skip
            refused = ansible_playbook(run_store, collections, cwd, "-i", str(inventory), "sealer.cluster.run",
                                       "-e", f"sealer_image={IMAGE}", "-e", extra)  # fmt: skip
            assert refused.returncode != 0, name
            assert "sealer_cluster" in refused.stdout and "Traceback" not in refused.stdout + refused.stderr, name
        for host in hosts:
            diff = differences(by_command[host.address], tree(host))
            assert diff == [], f"{host.address}: " + "\n".join(diff[:40])
        gone = ansible_playbook(run_store, collections, cwd, "-i", str(inventory), "sealer.cluster.delete",
                                "-e", f"sealer_cluster={CLUSTER}")  # fmt: skip
        assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr
        assert not cluster_dir(run_store, CLUSTER).exists()
        deleted_by_playbook = {h.address: tree(h) for h in hosts}
        for host in hosts:
            assert host.ssh(f"test -e /var/lib/sealer/data/{CLUSTER}", check=False).returncode == 1
            assert host.ssh("test -e /var/lib/sealer/data/.cluster", check=False).returncode == 1

        # the run playbook, then sealer delete on the cluster it made
        proc = ansible_playbook(run_store, collections, cwd, "-i", str(inventory), "sealer.cluster.run",
                                "-e", f"sealer_image={IMAGE}", "-e", f"sealer_cluster={CLUSTER}")  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        for host in hosts:
            diff = differences(by_command[host.address], tree(host))
            assert diff == [], f"{host.address}: " + "\n".join(diff[:40])
        state = yaml.safe_load((cluster_dir(run_store, CLUSTER) / "inventory.yaml").read_text())
        assert state["all"]["hosts"][node.address]["team"] == "edge"
        assert state["all"]["hosts"][node.address]["sealer_platform"] == "linux/arm64/v8"
        assert not any(p.is_mount() for p in (cluster_dir(run_store, CLUSTER) / "mounts").glob("*"))
        run_store.run("delete", "--all", "--cluster", CLUSTER)
        for host in hosts:
            diff = differences(deleted_by_playbook[host.address], tree(host))
            assert diff == [], f"{host.address}: " + "\n".join(diff[:40])
    finally:
        run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)


def test_the_run_playbook_fails_in_one_line_on_a_bad_name(
    run_store: Sealer, sandbox: Sandbox, collections: Path, tmp_path: Path
) -> None:
    inventory = write_inventory(tmp_path / "mycluster", sandbox.hosts[0], sandbox.hosts[1], sandbox.key)
    proc = ansible_playbook(run_store, collections, tmp_path, "-i", str(inventory), "sealer.cluster.run",
                            "-e", f"sealer_image={IMAGE}", "-e", "sealer_cluster=../Bad")  # fmt: skip
    assert proc.returncode != 0
    assert "invalid cluster name '../Bad'" in proc.stdout, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    missing = ansible_playbook(run_store, collections, tmp_path, "-i", str(inventory), "sealer.cluster.run",
                               "-e", "sealer_image=no-such-image:v1", "-e", "sealer_cluster=my-cluster")  # fmt: skip
    assert missing.returncode != 0
    assert "no-such-image:v1" in missing.stdout, missing.stdout[-3000:]
    assert "Traceback" not in missing.stdout + missing.stderr
    # a check must not write the cluster's state or mount anything: refused, pointing at sealer run --check
    checked = ansible_playbook(run_store, collections, tmp_path, "-i", str(inventory), "sealer.cluster.run",
                               "-e", f"sealer_image={IMAGE}", "-e", "sealer_cluster=my-cluster", "--check")  # fmt: skip
    assert checked.returncode != 0
    assert "sealer run IMAGE -i INVENTORY --check" in checked.stdout, checked.stdout[-3000:]
    for host in sandbox.hosts[:2]:
        assert host.ssh("test -e /var/lib/sealer/data/my-cluster", check=False).returncode == 1
    assert not os.path.exists(cluster_dir(run_store, "my-cluster") / "Clusterfile")
