"""The registries each host's containerd is pointed at the cluster registry for: those the
image's container images come from, read from the image's list."""

from __future__ import annotations

import pytest

from sealer.cluster.prepare import upstream_registries
from sealer.errors import SealerError


def test_each_registry_once_docker_hub_for_names_without_one() -> None:
    refs = [
        "docker.io/kubernetesui/dashboard:v2.5.1",
        "docker.io/bitnami/mysql:8.0.28-debian-10-r23",
        "quay.io/coreos/etcd:v3.5.0",
        "registry.k8s.io/pause:3.9",
        "localhost:5000/tools/app@sha256:" + "a" * 64,
        "[::1]:5001/app:1",
        "busybox:1",  # not normalized: docker.io all the same
    ]
    assert upstream_registries("img:1", refs) == [
        "[::1]:5001", "docker.io", "localhost:5000", "quay.io", "registry.k8s.io",
    ]  # fmt: skip


def test_an_image_list_with_a_bad_reference_names_the_image() -> None:
    with pytest.raises(SealerError, match=r"^image img:1 lists an invalid image reference 'Bad/Name:1'"):
        upstream_registries("img:1", ["docker.io/ok/app:1", "Bad/Name:1"])
