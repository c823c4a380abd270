"""The sandbox: each host a real machine of its architecture, private, and gone after down."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import Sandbox, SandboxHost, sandbox_cli

ELF_MACHINE = {"amd64": "3e00", "arm64": "b700"}  # e_machine, little endian
PY_ELF_MACHINE = "import sys; print(open(sys.executable, 'rb').read(20)[18:20].hex())"


def test_hosts_are_real_machines_of_their_architecture(sandbox: Sandbox) -> None:
    for host in sandbox.hosts:
        out = host.ssh(f'uname -m; hostname; python3 -c "{PY_ELF_MACHINE}"; grep -c processor /proc/cpuinfo').stdout
        machine, hostname, python_elf, _cpus = out.split()
        assert machine == {"amd64": "x86_64", "arm64": "aarch64"}[host.arch]
        assert hostname == host.name
        assert python_elf == ELF_MACHINE[host.arch]  # the userland's own binaries are of that architecture
        if host.arch == "arm64":
            assert "CPU architecture: 8" in host.ssh("cat /proc/cpuinfo").stdout


def test_ls_lists_every_host(sandbox: Sandbox) -> None:
    rows = [r for r in json.loads(sandbox_cli("ls", "--output", "json").stdout) if r["sandbox"] == sandbox.name]
    assert [r["platform"] for r in rows] == [
        "linux/amd64", "linux/arm64/v8", "linux/amd64", "linux/arm64/v8", "linux/arm64/v8",
    ]  # fmt: skip
    assert len({r["address"] for r in rows}) == len(rows)
    assert all(r["address"].startswith("10.213.") for r in rows)


def test_hosts_do_not_see_each_others_files(sandbox: Sandbox) -> None:
    a, b, c = sandbox.hosts[0], sandbox.hosts[2], sandbox.hosts[1]
    a.ssh("echo private > /root/only-here")
    assert a.ssh("cat /root/only-here").stdout == "private\n"
    for other in (b, c):
        assert other.ssh("test -e /root/only-here", check=False).returncode == 1
    a.ssh("rm /root/only-here")


def test_hosts_reach_each_other(sandbox: Sandbox) -> None:
    a, b = sandbox.hosts[0], sandbox.hosts[1]
    probe = f"python3 -c \"import socket; socket.create_connection(('{b.address}', 22), 5); print('ok')\""
    assert a.ssh(probe).stdout.strip() == "ok"


def test_hosts_boot_systemd(sandbox: Sandbox) -> None:
    for host in sandbox.hosts:
        out = host.ssh("cat /proc/1/comm; systemctl is-active ssh dbus").stdout.split()
        assert out == ["systemd", "active", "active"], host.address
    # each host has its own PID namespace: no two hosts (nor this machine) share one
    namespaces = {h.ssh("readlink /proc/1/ns/pid").stdout.strip() for h in sandbox.hosts}
    assert len(namespaces) == len(sandbox.hosts)
    assert os.readlink("/proc/self/ns/pid") not in namespaces


def test_reboot_ends_every_process_and_starts_the_enabled_units(sandbox: Sandbox) -> None:
    host = sandbox.hosts[0]
    host.ssh(
        "printf '[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n'"
        " > /etc/systemd/system/probe.service && systemctl enable --now probe.service"
        " && (setsid sleep 1000 </dev/null >/dev/null 2>&1 &)"
    )
    try:
        boot = host.ssh("stat -c %Z /proc/1").stdout
        assert host.ssh("pgrep -x sleep | wc -l").stdout.strip() == "2"
        reboot = sandbox_cli("reboot", sandbox.name, host.name)
        assert reboot.returncode == 0, reboot.stderr
        assert host.ssh("stat -c %Z /proc/1").stdout != boot, "systemd did not start again"
        for _ in range(60):  # sshd answers before every unit has started
            if host.ssh("systemctl is-active probe.service", check=False).stdout.strip() == "active":
                break
            time.sleep(1)
        assert host.ssh("systemctl is-active probe.service").stdout.strip() == "active"
        assert host.ssh("pgrep -x sleep | wc -l").stdout.strip() == "1", "the loose process survived the reboot"
    finally:
        host.ssh("systemctl disable --now probe.service; rm -f /etc/systemd/system/probe.service")


def test_down_removes_everything_up_made() -> None:
    name = "tdown"
    sandbox_cli("down", name)
    up = sandbox_cli("up", name, "--hosts", "amd64,arm64", "--user", "alice")
    assert up.returncode == 0, up.stderr
    rows = [r for r in json.loads(sandbox_cli("ls", "--output", "json").stdout) if r["sandbox"] == name]
    for row in rows:
        # --user: the user logs in with the sandbox's key and has sudo; root cannot log in
        assert row["user"] == "alice"
        as_alice = SandboxHost(row["name"], row["address"], row["platform"], row["key"], user="alice")
        assert as_alice.ssh("id -un").stdout.strip() == "root"  # through sudo
        as_root = SandboxHost(row["name"], row["address"], row["platform"], row["key"], user="root")
        refused = as_root.ssh("true", check=False)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"sealer-{name}-1" in netns
    down = sandbox_cli("down", name)
    assert down.returncode == 0, down.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    mounts = Path("/proc/self/mounts").read_text()
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert f"sealer-{name}-" not in netns
    assert f"/sandboxes/{name}/" not in mounts
    assert f"/sandboxes/{name}/" not in procs
    assert not any(f"{r['address']}/24" in links for r in rows)
    assert name not in sandbox_cli("ls").stdout
    again = sandbox_cli("down", name)
    assert again.returncode == 1 and f"no sandbox named {name}" in again.stderr


def test_stop_ends_a_host_and_start_boots_it_again(sandbox: Sandbox) -> None:
    host = sandbox.hosts[2]
    boot = host.ssh("stat -c %Z /proc/1").stdout
    stop = sandbox_cli("stop", sandbox.name, host.name)
    assert stop.returncode == 0, stop.stderr
    assert f"{host.name} ({host.address}) stopped" in stop.stderr
    # powered off: its address answers nothing, none of its processes is left on this machine
    with contextlib.suppress(OSError), socket.create_connection((host.address, 22), timeout=3):
        raise AssertionError(f"{host.address} still answers on port 22")
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert f"--machine={host.name} " not in procs
    start = sandbox_cli("start", sandbox.name, host.address)
    assert start.returncode == 0, start.stderr
    assert host.ssh("stat -c %Z /proc/1").stdout != boot, "systemd did not start again"
    again = sandbox_cli("start", sandbox.name, host.name)  # a running host is left as it is
    assert again.returncode == 0, again.stderr
    assert host.ssh("true").returncode == 0
    unknown = sandbox_cli("stop", sandbox.name, "no-such-host")
    assert unknown.returncode == 1 and f"sandbox {sandbox.name} has no host no-such-host" in unknown.stderr
