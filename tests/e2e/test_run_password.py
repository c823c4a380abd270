"""sealer run with an SSH password: the hosts get the cluster's own key, the password is used
once, in sealer's own process, and appears in no process listing, file or log."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir, host_state
from tests.helpers import SEALER, Sealer

IMAGE = "kubernetes-multi-arch:v1.19.8"


def run_with_password(store: Sealer, password: str, *hosts: SandboxHost, cmd: str = "run") -> subprocess.Popen[str]:
    env = {**store.env(), "SEALER_SSH_PASSWORD": password}
    args = ["run", IMAGE, "-m", hosts[0].address, "-n", ",".join(h.address for h in hosts[1:]), "--cluster", "pw"]
    return subprocess.Popen([*SEALER, *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def watch_cmdlines(proc: subprocess.Popen[str], secret: bytes) -> tuple[int, list[str]]:
    """Read every process's arguments until ``proc`` ends: how many reads, and any with the secret."""
    scans, leaks = 0, []
    while proc.poll() is None:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    data = Path(entry.path, "cmdline").read_bytes()
                except OSError:
                    continue
                if secret in data:
                    leaks.append(data.replace(b"\0", b" ").decode(errors="replace"))
        scans += 1
        time.sleep(0.02)
    return scans, leaks


def without_ssh_dir(state: str) -> str:
    return "\n".join(line for line in state.splitlines() if not line.startswith("/root/.ssh"))


def test_run_with_a_password(run_store: Sealer, sandbox: Sandbox) -> None:
    master, node = sandbox.hosts[2], sandbox.hosts[3]  # amd64, arm64
    password = Path(sandbox.password_file).read_text().strip()
    before = {h.address: host_state(h) for h in (master, node)}

    wrong = run_with_password(run_store, "not-the-password", master, node)
    _, err = wrong.communicate(timeout=120)
    assert wrong.returncode != 0
    for host in (master, node):
        assert f"{host.address}: authentication failed for user root" in err, err
        assert host_state(host) == before[host.address]

    proc = run_with_password(run_store, password, master, node)
    scans, leaks = watch_cmdlines(proc, password.encode())
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert scans > 20 and leaks == []
    for host in (master, node):
        version = host.ssh("/var/lib/sealer/data/pw/rootfs/bin/helm version").stdout
        assert f'GoArch:"{host.arch}"' in version
    cdir = cluster_dir(run_store, "pw")
    key = cdir / "ssh" / "id_ed25519"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    inventory = (cdir / "inventory.yaml").read_text()
    assert f"ansible_ssh_private_key_file: {key}" in inventory
    # the password is nowhere in sealer's state, inventories, ansible-runner artifacts or the hosts' logs
    grep = subprocess.run(["grep", "-rlF", password, str(run_store.root)], capture_output=True, text=True, check=False)
    assert grep.stdout == "", grep.stdout
    for host in (master, node):
        assert host.ssh(f"grep -rlF '{password}' /var/lib/sealer /var/log /tmp", check=False).stdout == ""
    # later commands use the cluster's key: a re-run without any password changes nothing
    again = run_store.run("run", IMAGE, "-m", master.address, "-n", node.address, "--cluster", "pw", "--pk", str(key))
    assert again.returncode == 0
    run_store.run("delete", "--all", "--cluster", "pw")
    for host in (master, node):
        assert without_ssh_dir(host_state(host)) == without_ssh_dir(before[host.address])
        assert "sealer-pw" not in host.ssh("cat /root/.ssh/authorized_keys", check=False).stdout
