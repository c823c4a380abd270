"""A Clusterfile's kubeadm documents are checked for unknown fields as its Cluster document is:
a typo is named with its file and line before any host is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealer.cluster.clusterfile import parse_clusterfile
from sealer.errors import ClusterfileError

CLUSTER = """apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: k
spec:
  image: kubernetes:v1.19.8
  hosts:
  - ips: [10.0.0.1]
    roles: [master]
---
"""


def parse(tmp_path: Path, kubeadm: str) -> list[dict[str, object]]:
    path = tmp_path / "Clusterfile"
    path.write_text(CLUSTER + kubeadm)
    return parse_clusterfile(path).kubeadm_docs


def test_known_fields_of_every_kind_pass(tmp_path: Path) -> None:
    docs = parse(
        tmp_path,
        """apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
kubernetesVersion: v1.19.8
networking: {podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/22}
apiServer: {certSANs: [api.example], extraArgs: {audit-log-maxage: "7"}}
etcd: {local: {dataDir: /var/lib/etcd}}
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
nodeRegistration: {criSocket: unix:///run/containerd/containerd.sock, taints: []}
localAPIEndpoint: {advertiseAddress: 10.0.0.1, bindPort: 6443}
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery: {bootstrapToken: {token: abc.def, apiServerEndpoint: "10.0.0.1:6443", unsafeSkipCAVerification: true}}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
anyFieldTheKubeletKnows: 1
""",
    )
    assert [d["kind"] for d in docs] == ["ClusterConfiguration", "InitConfiguration", "JoinConfiguration",
                                         "KubeletConfiguration"]  # fmt: skip


@pytest.mark.parametrize(
    ("kubeadm", "line", "message"),
    [
        ("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\nnetwrking: {podSubnet: x}\n", 13,
         "unknown field 'netwrking'"),
        ("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\nnetworking:\n  podSubnets: x\n", 14,
         "unknown field 'networking.podSubnets'"),
        ("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration: {nmae: m0}\n", 13,
         "unknown field 'nodeRegistration.nmae'"),
        ("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfig\n", 11, "has no kind 'InitConfig'"),
        ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: ClusterConfiguration\n", 11,
         "has no kind 'ClusterConfiguration'"),
    ],
)  # fmt: skip
def test_unknown_fields_and_kinds_are_named_with_file_and_line(
    tmp_path: Path, kubeadm: str, line: int, message: str
) -> None:
    with pytest.raises(ClusterfileError) as err:
        parse(tmp_path, kubeadm)
    assert str(err.value).startswith(f"{tmp_path / 'Clusterfile'}:{line}: ")
    assert message in str(err.value)
