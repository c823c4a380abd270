"""sealer run with an SSH password: the hosts get the cluster's own key, the password is used
once, in sealer's own process, and appears in no process listing, file or log. The same for
sudo's password when the login user's sudo asks for one."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import SUDO_USER, Sandbox, SandboxHost, cluster_dir, host_state
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
        # the pattern on stdin: in the command it would land in sudo's own log
        assert host.ssh("grep -rlF -f - /var/lib/sealer /var/log /tmp", check=False, input=password).stdout == ""
    # later commands use the cluster's key: a re-run without any password changes nothing
    again = run_store.run("run", IMAGE, "-m", master.address, "-n", node.address, "--cluster", "pw", "--pk", str(key))
    assert again.returncode == 0
    run_store.run("delete", "--all", "--cluster", "pw")
    for host in (master, node):
        assert without_ssh_dir(host_state(host)) == without_ssh_dir(before[host.address])
        assert "sealer-pw" not in host.ssh("cat /root/.ssh/authorized_keys", check=False).stdout


SUDO_ASKS = "sealer ALL=(ALL:ALL) ALL\n"
SUDO_NOPASSWD = "sealer ALL=(ALL:ALL) NOPASSWD: ALL\n"


def test_run_as_a_user_whose_sudo_asks_for_a_password(run_store: Sealer, sandbox: Sandbox) -> None:
    master, node = sandbox.hosts[2], sandbox.hosts[3]  # amd64, arm64
    password = Path(sandbox.password_file).read_text().strip()  # the sandbox user's password too
    roots = [h.as_user("root") for h in (master, node)]  # the tests' look while sudo asks
    for root in roots:
        root.ssh("cat > /etc/sudoers.d/sealer-sandbox", input=SUDO_ASKS)
    try:
        args = ["run", IMAGE, "-m", master.address, "-n", node.address, "-u", SUDO_USER, "--pk", master.key,
                "--cluster", "sudopw", "--output", "json"]  # fmt: skip
        refused = run_store.run(*args, check=False)
        assert refused.returncode == 1
        assert len(refused.stderr.strip().splitlines()) == 2, refused.stderr
        assert "sudo asks user sealer for a password: set SEALER_BECOME_PASSWORD" in refused.stderr
        for root in roots:
            assert root.ssh("test -e /var/lib/sealer", check=False).returncode == 1

        env = {**run_store.env(), "SEALER_BECOME_PASSWORD": password}
        proc = subprocess.Popen([*SEALER, *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        scans, leaks = watch_cmdlines(proc, password.encode())
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert scans > 20 and leaks == []
        for root, host in zip(roots, (master, node), strict=True):
            assert f'GoArch:"{host.arch}"' in root.ssh("/var/lib/sealer/data/sudopw/rootfs/bin/helm version").stdout
            assert root.ssh("find /var/lib/sealer ! -user root | head -3").stdout == ""
            assert (
                root.ssh("grep -rlF -f - /var/lib/sealer /var/log /tmp /home", check=False, input=password).stdout == ""
            )
        grep = subprocess.run(
            ["grep", "-rlF", password, str(run_store.root)], capture_output=True, text=True, check=False
        )
        assert grep.stdout == "", grep.stdout
        assert run_store.run("delete", "--all", "--cluster", "sudopw", check=False).returncode == 1  # no password
        delete = subprocess.run([*SEALER, "delete", "--all", "--cluster", "sudopw"], env=env, capture_output=True,
                                text=True, check=False)  # fmt: skip
        assert delete.returncode == 0, delete.stderr
        for root in roots:
            assert root.ssh("test -e /var/lib/sealer", check=False).returncode == 1
    finally:
        run_store.run("delete", "--all", "--cluster", "sudopw", check=False)
        for root in roots:
            root.ssh("cat > /etc/sudoers.d/sealer-sandbox", input=SUDO_NOPASSWD)
