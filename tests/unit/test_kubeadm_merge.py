"""The image's kubeadm documents, each overridden by the Clusterfile's of the same kind."""

from __future__ import annotations

import yaml

from sealer.cluster.prepare import merge_kubeadm

BASE = """\
apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
kubernetesVersion: v1.19.8
networking:
  podSubnet: 100.64.0.0/10
  serviceSubnet: 10.96.0.0/22
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: InitConfiguration
"""


def test_the_clusterfiles_documents_override_the_images_and_add_new_kinds() -> None:
    ours = [
        {"apiVersion": "kubeadm.k8s.io/v1beta2", "kind": "ClusterConfiguration",
         "networking": {"podSubnet": "10.244.0.0/16"}},
        {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "maxPods": 50},
    ]  # fmt: skip
    merged = {d["kind"]: d for d in yaml.safe_load_all(merge_kubeadm(BASE, ours))}
    assert merged["ClusterConfiguration"]["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/22",
    }
    assert merged["ClusterConfiguration"]["kubernetesVersion"] == "v1.19.8"
    assert merged["KubeletConfiguration"]["maxPods"] == 50
    assert set(merged) == {"ClusterConfiguration", "InitConfiguration", "KubeletConfiguration"}


def test_without_documents_of_its_own_the_image_is_kept() -> None:
    assert list(yaml.safe_load_all(merge_kubeadm(BASE, []))) == list(yaml.safe_load_all(BASE))
