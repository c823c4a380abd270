"""Faults during sealer run, on the sandbox: a host's sshd killed in the middle of its rootfs
transfer, a host's link cut and restored, hosts rebooted between runs (the registry, a unit,
comes back by itself), the registry process killed or stopped. Each failing run names the host
and the task; a re-run finishes the cluster, and never sends a host a complete rootfs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Sandbox, SandboxHost, sandbox_cli, skopeo_raw, standin_log
from tests.helpers import SEALER, Sealer

IMAGE = "faults:v1"
CLUSTER = "faults"
ROOTFS = f"/var/lib/sealer/data/{CLUSTER}/rootfs"
PAYLOAD_MIB = 8 * 24


@pytest.fixture(scope="module")
def image(run_store: Sealer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The example app with 192 MiB more in eight files: a transfer that lasts long enough to break."""
    ctx = tmp_path_factory.mktemp("faults-ctx")
    for i in range(8):
        (ctx / "payload").mkdir(exist_ok=True)
        (ctx / "payload" / f"part{i}.bin").write_bytes(os.urandom(24 << 20))
    (ctx / "Kubefile").write_text("FROM kubernetes-multi-arch:v1.19.8\nCOPY payload payload\n")
    run_store.run("build", "--platform", "linux/amd64,linux/arm64", "-t", IMAGE, str(ctx))
    return IMAGE


@pytest.fixture(scope="module")
def hosts(sandbox: Sandbox, run_store: Sealer, image: str) -> Iterator[tuple[SandboxHost, SandboxHost]]:
    master, node = sandbox.hosts[0], sandbox.hosts[1]  # amd64, arm64
    yield master, node
    run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)


def start_run(store: Sealer, master: SandboxHost, node: SandboxHost) -> subprocess.Popen[str]:
    args = ["run", IMAGE, "-m", master.address, "-n", node.address, "--pk", master.key, "--cluster", CLUSTER,
            "--output", "json"]  # fmt: skip
    return subprocess.Popen(
        [*SEALER, *args], env=store.env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=900)
    return proc.returncode, out, err


def payload_mib(host: SandboxHost) -> int:
    """How much of the payload the host holds, rsync's hidden temp files included."""
    proc = host.ssh(f"du -sm {ROOTFS}/payload 2>/dev/null || echo 0", check=False)
    return int(proc.stdout.split()[0] or 0)


def wait_for_payload(host: SandboxHost, proc: subprocess.Popen[str], mib: int) -> None:
    for _ in range(1200):
        if payload_mib(host) >= mib:
            return
        assert proc.poll() is None, "the run ended before the transfer was under way"
        time.sleep(0.2)
    raise AssertionError(f"{host.address}: the payload never reached {mib} MiB")


def sent_to(host: SandboxHost) -> int:
    """Bytes the bridge has sent the host so far (its veth's counter)."""
    stats = json.loads(subprocess.run(["ip", "-s", "-j", "link", "show", host.link],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    return int(stats[0]["stats64"]["tx"]["bytes"])


def assert_cluster_complete(master: SandboxHost, node: SandboxHost) -> None:
    for host in (master, node):
        assert f'GoArch:"{host.arch}"' in host.ssh(f"{ROOTFS}/bin/helm version").stdout
        assert payload_mib(host) >= PAYLOAD_MIB
        assert host.ssh(f"find {ROOTFS}/payload -name '.*' | wc -l").stdout.strip() == "0"  # no rsync leftovers
    assert len([c for _t, c in standin_log(master, CLUSTER) if " init --config" in c]) == 1
    assert len([c for _t, c in standin_log(node, CLUSTER) if c.startswith("kubeadm") and " join " in c]) == 1
    assert "manifests" in skopeo_raw(master.address, "kubernetesui/dashboard:v2.5.1")


def kill_host_processes(host: SandboxHost, only: str = "") -> None:
    pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True, check=True).stdout
    for pid in pids.split():
        try:
            if only and only not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                continue
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, FileNotFoundError):
            pass


def test_sshd_killed_in_the_middle_of_the_rootfs_transfer(
    run_store: Sealer, sandbox: Sandbox, hosts: tuple[SandboxHost, SandboxHost]
) -> None:
    master, node = hosts
    proc = start_run(run_store, master, node)
    wait_for_payload(node, proc, 60)
    kill_host_processes(node)  # sshd and every session: the host is unreachable now
    code, _, err = finish(proc)
    assert code != 0
    assert f"{node.address}: " in err and ("Send this host the rootfs" in err or "unreachable" in err.lower()), err
    assert sandbox_cli("reboot", sandbox.name, node.name).returncode == 0
    before = sent_to(node)
    code, _, err = finish(start_run(run_store, master, node))
    assert code == 0, err
    resent = sent_to(node) - before
    assert resent < (PAYLOAD_MIB - 24) << 20, f"the re-run sent {resent >> 20} MiB: the whole payload again"
    assert_cluster_complete(master, node)


def test_link_cut_then_restored(run_store: Sealer, sandbox: Sandbox, hosts: tuple[SandboxHost, SandboxHost]) -> None:
    master, node = hosts
    node.ssh(f"rm -rf {ROOTFS}/payload")  # something to send again
    proc = start_run(run_store, master, node)
    wait_for_payload(node, proc, 48)
    subprocess.run(["ip", "link", "set", node.link, "down"], check=True)
    try:
        code, _, err = finish(proc)  # the keepalives give up on the host in about 30 s
    finally:
        subprocess.run(["ip", "link", "set", node.link, "up"], check=True)
    assert code != 0
    assert f"{node.address}: " in err, err
    before = sent_to(node)
    code, _, err = finish(start_run(run_store, master, node))
    assert code == 0, err
    assert sent_to(node) - before < (PAYLOAD_MIB - 24) << 20
    assert_cluster_complete(master, node)


def test_an_interrupted_run_says_so_on_one_line_and_leaves_nothing_running(
    run_store: Sealer, hosts: tuple[SandboxHost, SandboxHost]
) -> None:
    master, node = hosts
    node.ssh(f"rm -rf {ROOTFS}/payload")
    proc = start_run(run_store, master, node)
    wait_for_payload(node, proc, 48)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert (code, err) == (130, "sealer: interrupted by SIGINT\n")
    time.sleep(1)
    mine = str(run_store.root / "clusters" / CLUSTER)
    left = [p for p in Path("/proc").glob("[0-9]*") if mine in _cmdline(p)]
    assert left == [], [_cmdline(p) for p in left]
    code, _, err = finish(start_run(run_store, master, node))
    assert code == 0, err
    assert_cluster_complete(master, node)


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def serves(address: str, timeout: float = 90) -> bool:
    """Whether the registry answers within ``timeout`` (a booting host starts it as a unit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            skopeo_raw(address, "kubernetesui/dashboard:v2.5.1")
            return True
        except subprocess.CalledProcessError:
            time.sleep(1)
    return False


def test_hosts_rebooted_between_runs(
    run_store: Sealer, sandbox: Sandbox, hosts: tuple[SandboxHost, SandboxHost]
) -> None:
    master, node = hosts
    unit = f"sealer-registry-{CLUSTER}.service"
    assert master.ssh(f"systemctl is-enabled {unit}").stdout.strip() == "enabled"
    registry_pid = master.ssh(f"systemctl show -p MainPID --value {unit}").stdout.strip()
    for host in (master, node):
        assert sandbox_cli("reboot", sandbox.name, host.name).returncode == 0
    # the registry is a unit: the host's systemd started it again, without a run of sealer
    assert serves(master.address), "the registry did not come back after the reboot"
    assert master.ssh(f"systemctl show -p MainPID --value {unit}").stdout.strip() != registry_pid
    before = sent_to(node)
    code, out, err = finish(start_run(run_store, master, node))
    assert code == 0, err
    assert sent_to(node) - before < 4 << 20  # the rootfs is on the disk still: nothing to send
    changed = {h["address"]: h["changedTasks"] for h in json.loads(out)["hosts"]}
    assert changed == {master.address: [], node.address: []}, changed
    assert_cluster_complete(master, node)


def test_registry_killed(run_store: Sealer, sandbox: Sandbox, hosts: tuple[SandboxHost, SandboxHost]) -> None:
    master, node = hosts
    kill_host_processes(master, only="registry")
    assert serves(master.address), "systemd did not restart the killed registry"
    master.ssh(f"systemctl stop sealer-registry-{CLUSTER}.service")
    with pytest.raises(subprocess.CalledProcessError):
        skopeo_raw(master.address, "kubernetesui/dashboard:v2.5.1")
    code, out, err = finish(start_run(run_store, master, node))
    assert code == 0, err
    changed = {h["address"]: h["changedTasks"] for h in json.loads(out)["hosts"]}
    assert changed[node.address] == [], changed  # only the registry host had something to repair
    assert_cluster_complete(master, node)
