"""The tests' look at the example base's control plane (stacked etcd on every master, an API
server that keeps its objects in it, a kubelet per host posting its Node) through kubectl and
etcdctl on the hosts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import SandboxHost

ETCDCTL = (
    "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt"
    " --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key"
)
# what a node's kubelet may read with its own credentials
NODE_KUBECTL = "kubectl --kubeconfig /etc/kubernetes/kubelet.conf"
MADE = ("/etc/kubernetes", "/var/lib/etcd", "/var/lib/kubelet", "/usr/local/bin/kubectl", "/usr/local/bin/etcdctl",
        "/etc/systemd/system/etcd.service", "/etc/systemd/system/kube-apiserver.service",
        "/etc/systemd/system/kubelet.service", "/etc/profile.d/etcdctl.sh")  # fmt: skip


def poll(what: str, probe: Callable[[], Any], timeout: float) -> tuple[Any, float]:
    """The probe's first true answer and how long it took; fails after ``timeout`` seconds."""
    start = time.monotonic()
    last: Any = None
    while time.monotonic() - start < timeout:
        last = probe()
        if last:
            return last, time.monotonic() - start
        time.sleep(2)
    raise AssertionError(f"{what} within {timeout:.0f} s; last: {last}")


def nodes(host: SandboxHost, kubectl: str = NODE_KUBECTL) -> dict[str, dict[str, Any]]:
    proc = host.ssh(f"{kubectl} get nodes -o json", check=False)
    if proc.returncode != 0:
        return {}
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "List"
    return {n["metadata"]["name"]: n for n in doc["items"]}


def is_ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def internal_ip(node: dict[str, Any]) -> str:
    return str(next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"))
