"""A control plane that survives losing a master: with three masters every node reaches the API
server through a load balancer of its own (haproxy) in front of all of them, and every master
serves the cluster registry, every hosts.toml listing them all; master0's host stopped, the nodes
go on through the others, and a master deleted leaves every list. Failover times are measured
and printed (docs/ha.md records them)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shlex
import statistics
import subprocess
import time
from typing import Any

from tests.e2e.conftest import Sandbox, SandboxHost, run_cluster, sandbox_cli
from tests.e2e.control_plane import is_ready, nodes, poll
from tests.e2e.test_runtime import CERTS, listed_images, pull_and_read
from tests.helpers import Sealer

CLUSTER = "ha"
SOCKET = f"/run/sealer-apiserver-lb-{CLUSTER}.sock"
TRIES = 5
# A watcher run on a node: it reads the load balancer's backends from its socket every 0.2 s and
# prints the time (the hosts share the controller's clock) when SERVER's status starts with WANT
WATCH = """
import socket, sys, time
server, want, sock = sys.argv[1:4]
print("watching", flush=True)
while True:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"show stat\\n")
    rows = s.makefile().read().splitlines()
    s.close()
    if any(r.split(",")[1] == server and r.split(",")[17].startswith(want) for r in rows[1:] if "," in r):
        print(time.time(), flush=True)
        break
    time.sleep(0.2)
"""


def backends(host: SandboxHost) -> dict[str, str]:
    """The node's load balancer's backends and each one's status (UP, DOWN...), as haproxy says."""
    script = (
        f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({SOCKET!r}); s.sendall(b'show stat\\n');"
        " print(s.makefile().read())"
    )
    out = host.ssh(f"python3 -c {shlex.quote(script)}").stdout
    rows = list(csv.DictReader(out.lstrip("# ").splitlines()))
    return {r["svname"]: r["status"] for r in rows if r["pxname"] == "masters" and r["svname"] != "BACKEND"}


def configured(host: SandboxHost) -> list[str]:
    """The masters the node's load balancer configuration lists."""
    text = host.ssh(f"cat /var/lib/sealer/data/{CLUSTER}/apiserver-lb.cfg").stdout
    return [line.split()[2].rsplit(":", 1)[0] for line in text.splitlines() if line.strip().startswith("server ")]


def mirrors(host: SandboxHost, registry: str = "docker.io") -> list[str]:
    text = host.ssh(f"cat {CERTS}/{registry}/hosts.toml").stdout
    return [line.split('"')[1] for line in text.splitlines() if line.startswith("[host.") and ".header" not in line]


def all_up(host: SandboxHost, masters: list[SandboxHost]) -> bool:
    return backends(host) == {m.address: "UP" for m in masters}


def watch(node: SandboxHost, server: str, want: str) -> subprocess.Popen[str]:
    """Start the watcher on ``node``; returns once it reads the socket."""
    proc = subprocess.Popen(
        node.ssh_argv(f"python3 -c {shlex.quote(WATCH)} {server} {want} {SOCKET}"),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "watching"
    return proc


def seen(proc: subprocess.Popen[str], timeout: float) -> float:
    out, _ = proc.communicate(timeout=timeout)
    return float(out.split()[-1])


def summary(what: str, times: list[float]) -> str:
    each = ", ".join(f"{t:.1f}" for t in times)
    line = f"{what}: p50 {statistics.median(times):.1f} s, worst {max(times):.1f} s ({each})"
    print(line)
    return line


def beat_since(host: SandboxHost, since: float) -> dict[str, Any] | None:
    """The host's Node, as its own credentials read it, once its kubelet posted after ``since``."""
    node = nodes(host).get(host.name)
    if node is None:
        return None
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    beat = dt.datetime.fromisoformat(ready["lastHeartbeatTime"].replace("Z", "+00:00")).timestamp()
    return node if beat > since else None


def test_a_node_reaches_the_api_and_the_registry_through_any_master(run_store: Sealer, sandbox: Sandbox) -> None:
    m1, m2, m3, n4, n5 = sandbox.hosts  # amd64, arm64, amd64; arm64, arm64
    masters, workers = [m1, m2, m3], [n4, n5]
    begun = time.monotonic()
    stopped = False
    try:
        run_cluster(run_store, CLUSTER, masters, workers)
        print(f"run of 3 masters and 2 nodes: {time.monotonic() - begun:.0f} s")
        images = listed_images(run_store)
        for node in workers:
            # the node's load balancer lists the 3 masters, each health-checked UP; the API
            # server's name resolves to it, and the node's own credentials answer through it
            assert configured(node) == [m.address for m in masters]
            poll(f"{node.name}'s load balancer with 3 masters UP", lambda n=node: all_up(n, masters), 60)
            assert node.ssh("getent hosts apiserver.cluster.local").stdout.split()[0] == "127.0.0.1"
            assert set(nodes(node)) == {h.name for h in sandbox.hosts}
            # every master serves the registry: the node's hosts.toml lists them in order
            assert mirrors(node) == [f"http://{m.address}:5000" for m in masters]
            assert mirrors(node, "sea.hub:5000") == [f"http://{m.address}:5000" for m in masters]
        for master in masters:
            # a master reaches its own API server, and its own registry first; it runs no load balancer
            assert master.ssh("getent hosts apiserver.cluster.local").stdout.split()[0] == master.address
            own_first = [master, *(m for m in masters if m != master)]
            assert mirrors(master) == [f"http://{m.address}:5000" for m in own_first]
            assert master.ssh("systemctl is-active sealer-registry-ha.service").stdout.strip() == "active"
            assert master.ssh("test -e /etc/systemd/system/sealer-apiserver-lb-ha.service", check=False).returncode == 1

        # failover, measured: master0's API server stopped, the nodes' load balancers take it out of
        # rotation (kubectl answers meanwhile), and back when it answers again
        down, back = [], []
        for _ in range(TRIES):
            watcher = watch(n4, m1.address, "DOWN")
            stop = time.time()
            m1.ssh("systemctl stop kube-apiserver.service")
            down.append(seen(watcher, 30) - stop)
            assert n5.name in nodes(n5)
            watcher = watch(n4, m1.address, "UP")
            start = time.time()
            m1.ssh("systemctl start kube-apiserver.service")
            back.append(seen(watcher, 60) - start)
        api_lines = [summary("API: master out of rotation after its API server stopped", down),
                     summary("API: master back in rotation after its API server started", back)]  # fmt: skip
        # the registry: master0's replica stopped, a pull on a node (master0's replica is its first) falls
        # through to the next one
        ref = next(i for i in images if "dashboard" in i)
        pulls, usual = [], []
        for _ in range(TRIES):
            start = time.monotonic()
            assert f"stand-in for linux/{n5.arch}" in pull_and_read(n5, ref)
            usual.append(time.monotonic() - start)
            m1.ssh("systemctl stop sealer-registry-ha.service")
            start = time.monotonic()
            assert f"stand-in for linux/{n5.arch}" in pull_and_read(n5, ref)
            pulls.append(time.monotonic() - start)
            m1.ssh("systemctl start sealer-registry-ha.service")
        registry_lines = [summary("registry: a pull (resolve, fetch, mount) with every replica up", usual),
                          summary("registry: the same pull with master0's replica stopped", pulls)]  # fmt: skip

        # master0's host stopped: within 30 s kubectl answers on every node, the nodes' heartbeats go
        # on (they stay Ready), and each node pulls an image of the cluster's list for its own arch
        assert sandbox_cli("stop", sandbox.name, m1.address).returncode == 0
        stop = time.time()
        stopped = True
        answered, pulled = [], []
        for node in workers:
            poll(f"kubectl on {node.name}", lambda n=node: n.name in nodes(n), 30)
            answered.append(time.time() - stop)
        host_lines = [summary("master0's host stopped: kubectl answered on each node after", answered)]
        for node in workers:
            listed, _ = poll(f"{node.name}'s heartbeat after the stop", lambda n=node: beat_since(n, stop), 40)
            assert is_ready(listed)
            assert backends(node)[m1.address].startswith("DOWN")
            for image in images:
                start = time.monotonic()
                assert f"stand-in for linux/{node.arch}" in pull_and_read(node, image), (node.name, image)
                pulled.append(time.monotonic() - start)
        host_lines.append(summary("master0's host stopped: a first pull of each image on each node", pulled))

        # master0 back: the load balancers take it in again, without a re-run
        assert sandbox_cli("start", sandbox.name, m1.address).returncode == 0
        start = time.time()
        stopped = False
        for node in workers:
            poll(f"{node.name}'s load balancer with master0 back", lambda n=node: all_up(n, masters), 180)
        host_lines.append(f"master0's host started: back in rotation on every node within {time.time() - start:.0f} s")

        # a master deleted: every node's load balancer lists 2, every hosts.toml lists 2
        run_store.run("delete", "-m", m3.address, "--cluster", CLUSTER)
        for node in workers:
            assert configured(node) == [m1.address, m2.address]
            poll(f"{node.name}'s load balancer with 2 masters", lambda n=node: all_up(n, [m1, m2]), 30)
            assert set(nodes(node)) == {m1.name, m2.name, n4.name, n5.name}
        for host in (m1, m2, n4, n5):
            assert sorted(mirrors(host)) == sorted(f"http://{m.address}:5000" for m in (m1, m2))
        # a re-run changes nothing
        again = json.loads(run_cluster(run_store, CLUSTER, [m1, m2], workers).stdout)
        assert [h["changed"] for h in again["hosts"]] == [0, 0, 0, 0], again
        print("\n".join(["failover:", *api_lines, *registry_lines, *host_lines]))
    finally:
        if stopped:
            sandbox_cli("start", sandbox.name, m1.address)
        run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)
        print(f"test_ha: {time.monotonic() - begun:.0f} s")
