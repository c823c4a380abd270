"""The example base's stand-ins on this machine, on loopback: Debian's etcd (amd64, from the
prepared examples), the stand-in API server on it, a kubelet registering this machine, and the
stand-in kubectl's command lines and output shapes against them. (The e2e test
tests/e2e/test_membership.py makes the same control plane with kubeadm on sandbox hosts.)"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, free_port

ROOTFS = EXAMPLES / "kubernetes-base" / "rootfs"
STANDIN_LIB = ROOTFS / "lib" / "standin"


@dataclass
class Plane:
    env: dict[str, str]
    node: str
    log: Path

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, str(ROOTFS / "bin" / "kubectl"), *args], env=self.env,
                              capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.returncode} {proc.stderr}")
        return proc


def _wait(what: str, probe: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():  # type: ignore[operator]
                return
        except (OSError, AssertionError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


@pytest.fixture(scope="module")
def plane(prepared_examples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    if platform.machine() != "x86_64":
        pytest.skip("runs the prepared amd64 etcd")
    sys.path.insert(0, str(STANDIN_LIB))
    sys.dont_write_bytecode = True  # nothing written into the example's rootfs
    try:
        import kube  # the stand-ins' own certificate making
    finally:
        sys.dont_write_bytecode = False
        sys.path.remove(str(STANDIN_LIB))

    work = tmp_path_factory.mktemp("plane")
    pki = work / "pki"
    ca, etcd_ca = (str(pki / "ca.crt"), str(pki / "ca.key")), (str(pki / "etcd-ca.crt"), str(pki / "etcd-ca.key"))
    kube.make_cert(*ca, "/CN=kubernetes")
    kube.make_cert(*etcd_ca, "/CN=etcd-ca")
    local = ["localhost", "127.0.0.1"]
    kube.make_cert(str(pki / "etcd.crt"), str(pki / "etcd.key"), "/CN=etcd", etcd_ca, "serverAuth,clientAuth", local)
    kube.make_cert(str(pki / "api-etcd.crt"), str(pki / "api-etcd.key"), "/CN=apiserver-etcd-client", etcd_ca)
    kube.make_cert(str(pki / "api.crt"), str(pki / "api.key"), "/CN=kube-apiserver", ca, "serverAuth",
                   ["apiserver.cluster.local", *local])  # fmt: skip
    kube.make_cert(str(pki / "admin.crt"), str(pki / "admin.key"), "/O=system:masters/CN=kubernetes-admin", ca)
    client_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd = subprocess.Popen(
        [str(prepared_examples / "kubernetes-base" / "amd64" / "bin" / "etcd"), "--name=one",
         f"--data-dir={work / 'etcd'}", f"--listen-client-urls=https://127.0.0.1:{client_port}",
         f"--advertise-client-urls=https://127.0.0.1:{client_port}",
         f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
         f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
         f"--initial-cluster=one=http://127.0.0.1:{peer_port}", "--client-cert-auth",
         f"--trusted-ca-file={etcd_ca[0]}", f"--cert-file={pki / 'etcd.crt'}", f"--key-file={pki / 'etcd.key'}",
         "--log-level=error"],
        stdout=subprocess.DEVNULL, stderr=open(work / "etcd.log", "wb"),  # noqa: SIM115
    )  # fmt: skip
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SEALER_STANDIN_LOG": str(work / "calls.log")}
    api = subprocess.Popen(
        [sys.executable, str(ROOTFS / "bin" / "kube-apiserver"), "--bind-address=127.0.0.1",
         f"--secure-port={api_port}", f"--tls-cert-file={pki / 'api.crt'}", f"--tls-private-key-file={pki / 'api.key'}",
         f"--client-ca-file={ca[0]}", f"--cluster-signing-cert-file={ca[0]}", f"--cluster-signing-key-file={ca[1]}",
         f"--etcd-servers=https://127.0.0.1:{client_port}", f"--etcd-cafile={etcd_ca[0]}",
         f"--etcd-certfile={pki / 'api-etcd.crt'}", f"--etcd-keyfile={pki / 'api-etcd.key'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / "api.log", "wb"),  # noqa: SIM115
    )  # fmt: skip
    config = work / "admin.conf"
    admin = (kube.read(str(pki / "admin.crt")), kube.read(str(pki / "admin.key")))
    config.write_text(kube.kubeconfig(f"https://127.0.0.1:{api_port}", kube.read(ca[0]), "kubernetes-admin", *admin))
    env["KUBECONFIG"] = str(config)
    node = "standin-test-node"
    kubelet = subprocess.Popen(
        [sys.executable, str(ROOTFS / "bin" / "kubelet"), f"--kubeconfig={config}", "--node-ip=127.0.0.1",
         f"--hostname-override={node}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    p = Plane(env, node, work / "calls.log")
    try:
        _wait("the node's registration", lambda: p.kubectl("get", "node", node, check=False).returncode == 0)
        yield p
    finally:
        for proc in (kubelet, api, etcd):
            proc.terminate()
            proc.wait(timeout=20)


def test_get_nodes_shows_the_registered_kubelet_in_kubectls_shapes(plane: Plane) -> None:
    table = plane.kubectl("get", "nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert table[1].split()[:3] == [plane.node, "Ready", "<none>"] and table[1].split()[4] == "v1.19.8"
    wide = plane.kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:7] == ["INTERNAL-IP", "EXTERNAL-IP"] and wide[1].split()[5] == "127.0.0.1"
    doc = json.loads(plane.kubectl("get", "nodes", "-o", "json").stdout)
    assert doc["kind"] == "List" and [n["metadata"]["name"] for n in doc["items"]] == [plane.node]
    node = doc["items"][0]
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "amd64"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == plane.node
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.19.8"
    assert node["status"]["nodeInfo"]["architecture"] == "amd64"
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    assert plane.kubectl("get", "no", "-o", "name").stdout == f"node/{plane.node}\n"
    missing = plane.kubectl("get", "node", "nope", check=False)
    assert missing.returncode == 1 and 'Error from server (NotFound): nodes "nope" not found' in missing.stderr


def test_cordon_drain_label_and_taint_change_the_node(plane: Plane) -> None:
    name = plane.node
    assert plane.kubectl("cordon", name).stdout == f"node/{name} cordoned\n"
    assert "Ready,SchedulingDisabled" in plane.kubectl("get", "nodes").stdout
    assert plane.kubectl("uncordon", name).stdout == f"node/{name} uncordoned\n"
    # the source rootfs is v1.19.8, whose kubectl names emptyDir data --delete-local-data
    unknown = plane.kubectl("drain", name, "--ignore-daemonsets", "--delete-emptydir-data", check=False)
    assert unknown.returncode == 1 and "unknown flag: --delete-emptydir-data" in unknown.stderr
    drained = plane.kubectl("drain", name, "--ignore-daemonsets", "--delete-local-data").stdout
    assert drained == f"node/{name} cordoned\nnode/{name} drained\n"
    assert plane.kubectl("label", "node", name, "tier=edge").stdout == f"node/{name} labeled\n"
    refused = plane.kubectl("label", "node", name, "tier=core", check=False)
    assert refused.returncode == 1 and "--overwrite is false" in refused.stderr
    assert plane.kubectl("taint", "nodes", name, "dedicated=db:NoSchedule").stdout == f"node/{name} tainted\n"
    node = json.loads(plane.kubectl("get", "node", name, "-o", "json").stdout)
    assert node["spec"]["unschedulable"] is True
    assert node["spec"]["taints"] == [{"key": "dedicated", "effect": "NoSchedule", "value": "db"}]
    assert node["metadata"]["labels"]["tier"] == "edge"
    assert plane.kubectl("taint", "nodes", name, "dedicated:NoSchedule-").stdout == f"node/{name} untainted\n"
    plane.kubectl("uncordon", name)
    plane.kubectl("label", "node", name, "tier-")
    node = json.loads(plane.kubectl("get", "node", name, "-o", "json").stdout)
    assert "unschedulable" not in node["spec"] and "taints" not in node["spec"]
    assert "tier" not in node["metadata"]["labels"]


def test_applied_objects_are_kept_listed_and_deleted(plane: Plane) -> None:
    manifest = str(EXAMPLES / "multi-arch" / "dashborad.yaml")
    created = plane.kubectl("apply", "-f", manifest).stdout
    assert created == "namespace/kubernetes-dashboard created\ndeployment.apps/kubernetes-dashboard created\n"
    again = plane.kubectl("apply", "-f", manifest).stdout
    assert again == "namespace/kubernetes-dashboard unchanged\ndeployment.apps/kubernetes-dashboard unchanged\n"
    listed = plane.kubectl("get", "deployments", "-A").stdout.splitlines()
    assert listed[0].split() == ["NAMESPACE", "NAME", "AGE"]
    assert listed[1].split()[:2] == ["kubernetes-dashboard", "kubernetes-dashboard"]
    deploy = json.loads(plane.kubectl("get", "deploy", "kubernetes-dashboard", "-n", "kubernetes-dashboard",
                                      "-o", "json").stdout)  # fmt: skip
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "kubernetesui/dashboard:v2.5.1"
    plane.kubectl("delete", "-f", manifest)
    gone = plane.kubectl("get", "deploy", "kubernetes-dashboard", "-n", "kubernetes-dashboard", check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr
    assert f"kubectl[{platform.machine()}] apply -f {manifest}" in plane.log.read_text()


def test_unknown_flags_and_commands_fail_as_kubectls_do(plane: Plane) -> None:
    flag = plane.kubectl("get", "nodes", "--no-such-flag", check=False)
    assert flag.returncode == 1 and flag.stderr.startswith("Error: unknown flag: --no-such-flag\n")
    short = plane.kubectl("get", "nodes", "-z", check=False)
    assert short.returncode == 1 and short.stderr.startswith("Error: unknown shorthand flag: 'z' in -z")
    command = plane.kubectl("frobnicate", check=False)
    assert command.returncode == 1 and 'unknown command "frobnicate" for "kubectl"' in command.stderr
    resource = plane.kubectl("get", "widgets", check=False)
    assert resource.returncode == 1 and 'doesn\'t have a resource type "widgets"' in resource.stderr


def test_version_reports_the_bases_version_from_client_and_server(plane: Plane) -> None:
    doc = json.loads(plane.kubectl("version", "-o", "json").stdout)
    assert doc["clientVersion"]["gitVersion"] == doc["serverVersion"]["gitVersion"] == "v1.19.8"
    assert plane.kubectl("version", "--client", "--short").stdout == "Client Version: v1.19.8\n"
    kubeadm = subprocess.run([sys.executable, str(ROOTFS / "bin" / "kubeadm"), "version", "-o", "short"],
                             env=plane.env, capture_output=True, text=True, check=True)  # fmt: skip
    assert kubeadm.stdout == "v1.19.8\n"
