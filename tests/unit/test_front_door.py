"""The controller-side steps of the collection's playbooks run without the sealer command
(sealer/cluster/front_door.py, called by the action plugins sealer.cluster.prepare and finish)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sealer.cluster.clusterfile import SSHConfig
from sealer.cluster.front_door import host_entries, step
from sealer.cluster.inventory_file import read_inventory_file
from sealer.errors import ClusterfileError

INVENTORY = {"all": {
    "vars": {"sealer_cluster_name": "c", "sealer_registry_host": "10.0.0.1", "ansible_ssh_common_args": "-o A"},
    "hosts": {"10.0.0.1": {"sealer_role": "master", "ansible_user": "root"},
              "10.0.0.2": {"sealer_role": "node", "ansible_ssh_common_args": "-o A -o B"}},
    "children": {"master": {"hosts": {"10.0.0.1": None}}, "node": {"hosts": {"10.0.0.2": None}},
                 "registry": {"hosts": {"10.0.0.1": None}},
                 "linux_amd64": {"hosts": {"10.0.0.1": None, "10.0.0.2": None},
                                 "vars": {"sealer_rootfs_source": "/mnt/linux_amd64"}}},
}}  # fmt: skip


def test_each_host_gets_the_variables_and_groups_of_sealers_inventory_by_its_own_name() -> None:
    m1, n1 = host_entries(INVENTORY, {"10.0.0.1": "cp-1", "10.0.0.2": "worker-1"}, ["10.0.0.1", "10.0.0.2"])
    assert m1["name"] == "cp-1" and m1["groups"] == ["master", "registry", "linux_amd64"]
    assert n1["name"] == "worker-1" and n1["groups"] == ["node", "linux_amd64"]
    # the roles compare the registry host with inventory_hostname
    assert m1["sealer_registry_host"] == n1["sealer_registry_host"] == "cp-1"
    assert n1["sealer_rootfs_source"] == "/mnt/linux_amd64" and n1["sealer_role"] == "node"
    assert n1["ansible_ssh_common_args"] == "-o A -o B" and m1["ansible_ssh_common_args"] == "-o A"
    assert m1["ansible_remote_tmp"] == "/tmp/.sealer-ansible"


def test_an_inventorys_become_password_is_read_and_kept_apart_from_the_hosts_variables(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    children = {"master": {"hosts": {"m1": {"ansible_host": "10.0.0.1"}}}, "node": {"hosts": {"10.0.0.2": None}}}
    path.write_text(yaml.safe_dump({"all": {"vars": {"ansible_become_password": "canary-sudo"}, "children": children}}))
    read = read_inventory_file(path, SSHConfig())
    assert read.become_password == "canary-sudo"
    assert read.names == {"10.0.0.1": "m1", "10.0.0.2": "10.0.0.2"}
    assert "canary-sudo" not in repr(read)
    assert all("canary-sudo" not in repr(h.vars) for h in read.hosts)
    two = {"10.0.0.1": {"ansible_become_password": "one"}, "10.0.0.2": {"ansible_become_password": "two"}}
    path.write_text(yaml.safe_dump({"all": {"children": {"master": {"hosts": two}}}}))
    with pytest.raises(ClusterfileError, match="different ansible_become_password"):
        read_inventory_file(path, SSHConfig())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("prepare_run", "kubernetes:v1", "../Bad", []), "sealer_cluster: invalid cluster name '../Bad'"),
        (("prepare_run", "", "c", []), "needs the image: -e sealer_image=NAME"),
        (("prepare_run", "no-such:v1", "c", ["/tmp/a", "/tmp/b"]), "read one inventory"),
        (("prepare_delete", "c", [], []), "no cluster named c"),
    ],
)
def test_a_step_fails_in_one_line(
    args: tuple[str, ...], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALER_ROOT", str(tmp_path / "store"))
    result = step(*args)
    assert result["failed"] is True
    assert said in result["msg"] and "\n" not in result["msg"], result["msg"]
