"""The swarm delivery (``--distribution swarm``) on the mixed sandbox: every host's rootfs is
identical to the one rsync makes, init runs once, a re-run stays on rsync and sends nothing, and a
host whose swarm download dies falls back to rsync, named in the output. Nothing of the swarm is
left behind on the hosts or the controller."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import SUDO_USER, Sandbox, SandboxHost, cluster_dir, run_cluster, standin_log
from tests.e2e.test_run import ROOTFS
from tests.helpers import SEALER, Sealer

CLUSTER = "swarm"
# path, mode, owner, type, link target, size, hard link count; then each file's sha256
TREE = (
    "cd {root} && find . -printf '%p %M %u:%g %y %l %s %n\\n' | LC_ALL=C sort"
    " && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"
)


def tree(host: SandboxHost, cluster: str) -> str:
    return host.ssh(TREE.format(root=ROOTFS.format(cluster=cluster))).stdout


def init_runs(host: SandboxHost, cluster: str) -> int:
    return len([c for _t, c in standin_log(host, cluster) if c.startswith("init.sh[")])


def swarm_leftovers(host: SandboxHost) -> str:
    """aria2c processes and the swarm's scratch directory on a host: none after a run ([a]: the
    pattern does not match the shell that looks)."""
    return host.ssh(
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -a '[a]ria2c' && echo; done;"
        " ls -d /var/lib/sealer/data/*/swarm 2>/dev/null; true"
    ).stdout.strip()


def controller_leftovers(store: Sealer) -> list[str]:
    """The tracker and seeder sealer started on the controller, and its payloads: gone after a run."""
    cdir = str(cluster_dir(store, CLUSTER))
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout.splitlines()
    found = [p for p in procs if ("opentracker" in p or "aria2c" in p) and cdir in p]
    if (cluster_dir(store, CLUSTER) / "swarm").exists():
        found.append(f"{cdir}/swarm")
    return found


@pytest.fixture(scope="module")
def reference(run_store: Sealer, sandbox: Sandbox) -> dict[str, str]:
    """Each platform's tree as rsync makes it: one host of each, delivered with --distribution rsync."""
    amd = next(h for h in sandbox.hosts if h.arch == "amd64")
    arm = next(h for h in sandbox.hosts if h.arch == "arm64")
    out = json.loads(run_cluster(run_store, "swarmref", [amd], [arm], "--distribution", "rsync").stdout)
    try:
        print("rsync delivery:", json.dumps(out["delivery"]))
        assert out["delivery"]["method"] == "rsync"
        # every file went by rsync: what filesSent counts is what rsync sent
        assert all(n > 10 for n in out["delivery"]["filesSent"].values()), out["delivery"]
        return {h.arch: tree(h, "swarmref") for h in (amd, arm)}
    finally:
        run_store.run("delete", "--all", "--cluster", "swarmref")


@pytest.fixture(scope="module")
def swarm_run(run_store: Sealer, sandbox: Sandbox, reference: dict[str, str]) -> Iterator[dict[str, Any]]:
    h = sandbox.hosts
    # as the sudo user: the swarm's own rsync and tasks go through sudo (the fallback test logs in as root)
    result: dict[str, Any] = json.loads(
        run_cluster(run_store, CLUSTER, [h[0]], h[1:], "-u", SUDO_USER, "--distribution", "swarm").stdout
    )
    print("swarm delivery:", json.dumps(result["delivery"]))
    yield result
    run_store.run("delete", "--all", "--cluster", CLUSTER)


def test_swarm_trees_identical_to_rsync(
    swarm_run: dict[str, Any], reference: dict[str, str], run_store: Sealer, sandbox: Sandbox
) -> None:
    delivery = swarm_run["delivery"]
    assert delivery["method"] == "swarm"
    assert delivery["fallback"] == []
    assert delivery["seconds"] > 0
    # each rootfs was empty: the unpacked payload is the whole delivery, no rsync follows
    assert delivery["wholeBySwarm"] == sorted(h.address for h in sandbox.hosts)
    for host in sandbox.hosts:
        assert tree(host, CLUSTER) == reference[host.arch], host.address
        assert init_runs(host, CLUSTER) == 1, host.address
        # the swarm delivered every file: the rsync after it sent none
        assert delivery["filesSent"][host.address] == 0, host.address
        assert swarm_leftovers(host) == "", host.address
    assert controller_leftovers(run_store) == []


def test_rerun_stays_on_rsync_and_sends_nothing(swarm_run: dict[str, Any], run_store: Sealer, sandbox: Sandbox) -> None:
    h = sandbox.hosts
    again = json.loads(
        run_cluster(run_store, CLUSTER, [h[0]], h[1:], "-u", SUDO_USER, "--distribution", "swarm").stdout
    )
    print("re-run delivery:", json.dumps(again["delivery"]))
    assert again["delivery"]["method"] == "rsync"
    assert again["delivery"]["fallback"] == []
    assert again["delivery"]["filesSent"] == {host.address: 0 for host in h}
    assert [x["changed"] for x in again["hosts"]] == [0] * len(h)
    for host in h:
        assert init_runs(host, CLUSTER) == 1, host.address


def kill_aria2c_when_downloading(victim: SandboxHost, stop: threading.Event) -> None:
    """Kill the host's aria2c once it has started downloading (the link is slowed so that it is
    mid-download then)."""
    script = (
        "for p in /proc/[0-9]*; do"
        " tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -aq 'lib/aria2/[a]ria2c .*torrent' || continue;"
        " ls /var/lib/sealer/data/*/swarm/data/* >/dev/null 2>&1 || exit 1;"
        " kill -9 ${p#/proc/} && echo killed && exit 0; done; exit 1"
    )
    while not stop.is_set():
        if victim.ssh(script, check=False).returncode == 0:
            return
        time.sleep(0.5)


def test_failed_peer_falls_back_to_rsync(
    swarm_run: dict[str, Any], reference: dict[str, str], run_store: Sealer, sandbox: Sandbox
) -> None:
    h = sandbox.hosts
    run_store.run("delete", "--all", "--cluster", CLUSTER)
    victim = h[3]
    # 4 Mbit/s towards the victim: its download takes long enough to be cut in the middle
    subprocess.run(["tc", "qdisc", "add", "dev", victim.link, "root", "tbf", "rate", "4mbit",
                    "burst", "32kbit", "latency", "400ms"], check=True)  # fmt: skip
    stop = threading.Event()
    killer = threading.Thread(target=kill_aria2c_when_downloading, args=(victim, stop))
    try:
        args = ["run", "kubernetes-multi-arch:v1.19.8", "-m", h[0].address, "-n", ",".join(x.address for x in h[1:]),
                "--pk", h[0].key, "--cluster", CLUSTER, "--output", "json", "--distribution", "swarm"]  # fmt: skip
        proc = subprocess.Popen([*SEALER, *args], env=run_store.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        killer.start()
        killer.join(timeout=600)
        subprocess.run(["tc", "qdisc", "del", "dev", victim.link, "root"], check=False)
        out, err = proc.communicate(timeout=900)
    finally:
        stop.set()
        subprocess.run(["tc", "qdisc", "del", "dev", victim.link, "root"], check=False, capture_output=True)
    assert proc.returncode == 0, out + err
    delivery = json.loads(out)["delivery"]
    print("fallback delivery:", json.dumps(delivery))
    assert delivery["method"] == "swarm"
    assert delivery["fallback"] == [victim.address]
    assert f"{victim.address}: swarm download failed" in err, err
    assert delivery["filesSent"][victim.address] > 0
    assert delivery["wholeBySwarm"] == sorted(x.address for x in h if x is not victim)
    for host in h:
        assert tree(host, CLUSTER) == reference[host.arch], host.address
        assert init_runs(host, CLUSTER) == 1, host.address
        assert swarm_leftovers(host) == "", host.address
    assert controller_leftovers(run_store) == []


def downloading(victim: SandboxHost, proc: subprocess.Popen[str], deadline: float = 600) -> None:
    """Wait until the host's aria2c runs and has data (the link is slowed: it is mid-download then)."""
    script = (
        "for p in /proc/[0-9]*; do"
        " tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -aq 'lib/aria2/[a]ria2c .*torrent' || continue;"
        " ls /var/lib/sealer/data/*/swarm/data/* >/dev/null 2>&1 && exit 0; done; exit 1"
    )
    end = time.monotonic() + deadline
    while victim.ssh(script, check=False).returncode != 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "aria2c never started downloading"
        time.sleep(0.5)


def test_an_interrupted_swarm_stops_on_the_hosts_and_a_killed_ones_leftovers_go(
    swarm_run: dict[str, Any], run_store: Sealer, sandbox: Sandbox
) -> None:
    h = sandbox.hosts
    victim = h[3]
    args = ["run", "kubernetes-multi-arch:v1.19.8", "-m", h[0].address, "-n", ",".join(x.address for x in h[1:]),
            "--pk", h[0].key, "--cluster", CLUSTER, "--distribution", "swarm"]  # fmt: skip
    subprocess.run(["tc", "qdisc", "add", "dev", victim.link, "root", "tbf", "rate", "4mbit",
                    "burst", "32kbit", "latency", "400ms"], check=True)  # fmt: skip
    try:
        for signum in (signal.SIGINT, signal.SIGKILL):
            run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)
            proc = subprocess.Popen([*SEALER, *args], env=run_store.env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
            downloading(victim, proc)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=300)
            if signum == signal.SIGINT:
                # the run stops what it started on every host before it ends
                assert (proc.returncode, err) == (130, "sealer: interrupted by SIGINT\n")
                for host in h:
                    assert swarm_leftovers(host) == "", host.address
                assert controller_leftovers(run_store) == []
        # a killed run cleans nothing: the re-run (rsync, every host had a delivery) removes it
        assert swarm_leftovers(victim) != ""
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", victim.link, "root"], check=False, capture_output=True)
    again = json.loads(run_cluster(run_store, CLUSTER, [h[0]], h[1:], "--distribution", "swarm").stdout)
    assert again["delivery"]["method"] == "rsync"
    for host in h:
        assert swarm_leftovers(host) == "", host.address
    assert controller_leftovers(run_store) == []
