"""Path variables an inventory sets are refused, naming the host, the variable and its value,
unless they stay inside the directory sealer owns for the cluster; checked before any host is
touched (sealer run -i, and the collection's prepare step), and again by the reset role."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sealer.cluster.clusterfile import Cluster, Host, SSHConfig
from sealer.cluster.collection import collections_path
from sealer.cluster.host_paths import check_host_paths
from sealer.errors import ClusterfileError
from sealer.oci.reference import Reference

ROOT = Path(__file__).resolve().parents[2]


def cluster(**variables: object) -> Cluster:
    host = Host("10.0.0.1", "master", SSHConfig(), dict(variables))
    return Cluster("c1", Reference.parse("img:1"), SSHConfig(), [host])


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"sealer_data_root": "/srv/sealer"},
        {"sealer_data_root": "/data/sealer-clusters"},
        {"sealer_registry_ca_dirs": ["/etc/docker/certs.d"], "sealer_runtime_hosts_dir": "/etc/containerd/certs.d"},
    ],
)
def test_paths_inside_the_clusters_directory_pass(variables: dict[str, object]) -> None:
    check_host_paths(cluster(**variables))


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("sealer_data_dir", "/etc", "worked out by the collection's roles"),
        ("sealer_data_dir", "/var/lib/sealer/data/c1", "set sealer_data_root"),
        ("sealer_data_root", "/etc", "directory named for sealer"),
        ("sealer_data_root", "/", "directory named for sealer"),
        ("sealer_data_root", "var/lib/sealer", "absolute, normalized"),
        ("sealer_rootfs_dest", "/etc", "worked out by the collection's roles"),
        ("sealer_rootfs_dir", "/var/lib/sealer/data/c1/../../../../etc", "worked out by the collection's roles"),
        ("sealer_reset_data_dir", "/var/lib/sealer/data", "worked out by the collection's roles"),
        ("sealer_registry_data", "//var/lib/sealer/data/c1/registry", "worked out by the collection's roles"),
        ("sealer_reset_ca_dirs", ["/etc/docker/certs.d", "/"], "absolute, normalized paths"),
        ("sealer_runtime_hosts_dir", "/etc/containerd/../", "absolute, normalized paths"),
    ],
)
def test_a_path_outside_is_refused_naming_host_variable_and_value(name: str, value: object, said: str) -> None:
    with pytest.raises(ClusterfileError) as err:
        check_host_paths(cluster(**{name: value}))
    message = str(err.value)
    assert message.startswith(f"host 10.0.0.1: {name} {value!r} ") and said in message and "\n" not in message


def test_the_reset_role_asserts_the_data_directory_before_it_removes_anything() -> None:
    tasks = yaml.safe_load((ROOT / "roles" / "sealer_reset" / "tasks" / "main.yml").read_text())
    asserts = [i for i, t in enumerate(tasks) if "sealer_reset_data_dir" in str(t.get("ansible.builtin.assert", ""))]
    removals = [i for i, t in enumerate(tasks) if "absent" in str(t) or "rm " in str(t) or "reset -f" in str(t)]
    assert asserts and removals and asserts[0] < min(removals)


def reset_role(tmp_path: Path, role: str = "sealer_reset", **extra: str) -> subprocess.CompletedProcess[str]:
    """The reset role (or ``role``) on a host that cannot be reached (192.0.2.1, TEST-NET): its
    asserts run on the controller; the first task that needs the host fails, so nothing can be
    removed anywhere."""
    (tmp_path / "play.yml").write_text(f"- hosts: all\n  gather_facts: false\n  roles: [sealer.cluster.{role}]\n")
    (tmp_path / "hosts.yaml").write_text(
        "all:\n  hosts:\n    192.0.2.1:\n      ansible_ssh_common_args: -o ConnectTimeout=1\n"
    )
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "ANSIBLE_NOCOLOR": "1"}
    args = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.yaml"),
            str(tmp_path / "play.yml"), "-e", "sealer_cluster_name=c1"]  # fmt: skip
    for name, value in extra.items():
        args += ["-e", f"{name}={value}"]
    return subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize(
    "extra",
    [
        {"sealer_reset_data_dir": "/etc"},
        {"sealer_data_dir": "/var/lib/sealer/data/c1/../../../../etc"},
        {"sealer_data_root": "/etc"},
        {"sealer_data_root": "/var/lib/sealer/data/"},
        {"sealer_reset_data_dir": "/var/lib/sealer/data/c10"},
    ],
)
def test_the_reset_role_refuses_a_data_directory_outside_before_anything(tmp_path: Path, extra: dict[str, str]) -> None:
    proc = reset_role(tmp_path, **extra)
    assert proc.returncode != 0
    assert "must be an absolute, normalized path inside" in proc.stdout, proc.stdout
    assert "Look for kubeadm" not in proc.stdout


def test_the_reset_role_goes_on_with_the_clusters_own_directory(tmp_path: Path) -> None:
    proc = reset_role(tmp_path, sealer_data_root="/srv/sealer")
    assert "must be an absolute" not in proc.stdout and "UNREACHABLE" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "extra",
    [
        {"sealer_rootfs_dest": "/etc"},
        {"sealer_rootfs_dir": "/var/lib/sealer/data/c1/../../../../etc"},
        {"sealer_data_dir": "/root"},
        {"sealer_data_root": "/etc"},
        {"sealer_rootfs_dest": "/var/lib/sealer/data/c10/rootfs"},
        {"sealer_rootfs_swarm_dir": "/home"},
    ],
)
def test_the_rootfs_role_refuses_a_destination_outside_before_any_sync(tmp_path: Path, extra: dict[str, str]) -> None:
    # an -e outranks the role's vars/ and sealer's check of the inventory: the role asserts itself
    proc = reset_role(tmp_path, "sealer_rootfs", sealer_rootfs_source="/nonexistent", **extra)
    assert proc.returncode != 0
    assert "must be an absolute, normalized path inside" in proc.stdout, proc.stdout
    assert "Send this host the rootfs" not in proc.stdout


def test_the_rootfs_role_goes_on_with_the_clusters_own_directory(tmp_path: Path) -> None:
    proc = reset_role(tmp_path, "sealer_rootfs", sealer_rootfs_source="/nonexistent", sealer_data_root="/srv/sealer")
    assert "must be an absolute" not in proc.stdout and "Send this host the rootfs" in proc.stdout, proc.stdout
