"""Operators' inventory files, read with Ansible's own parser, become the cluster's hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealer.cluster.clusterfile import SSHConfig
from sealer.cluster.inventory_file import read_inventory
from sealer.errors import ClusterfileError

DEFAULTS = SSHConfig(user="root", port=22, pk="/default/key")


def test_a_kubespray_ini_inventory_with_group_vars(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.ini").write_text(
        "[kube_control_plane]\nm1 ansible_host=10.0.0.1 ansible_user=ops\n"
        "[kube_node]\nm1\nn1 ansible_host=10.0.0.2 ansible_port=2222\nn2 ansible_host=10.0.0.3\n"
        "[all:vars]\nansible_ssh_private_key_file=~/keys/id\n"
        "[n:children]\nkube_node\n"
    )
    (tmp_path / "group_vars" / "all.yml").write_text(
        "team: platform\nsealer_rootfs_io_timeout: 120\nsealer_arch: sparc\nansible_become: true\n"
        "ansible_become_password: canary-secret\nretries: '{{ 1 + 2 }}'\n"
    )
    hosts = read_inventory(tmp_path / "hosts.ini", DEFAULTS)
    assert [(h.address, h.role) for h in hosts] == [("10.0.0.1", "master"), ("10.0.0.2", "node"), ("10.0.0.3", "node")]
    m1, n1, _ = hosts
    assert (m1.ssh.user, m1.ssh.port) == ("ops", 22) and (n1.ssh.user, n1.ssh.port) == ("root", 2222)
    assert m1.ssh.pk == str(Path("~/keys/id").expanduser())
    # the operator's own variables, templated; sealer's own and secrets are not taken
    assert m1.vars["team"] == "platform" and m1.vars["sealer_rootfs_io_timeout"] == 120
    assert m1.vars["retries"] == "3" and m1.vars["ansible_become"] is True
    assert "sealer_arch" not in m1.vars
    assert "canary-secret" not in repr(hosts)


def test_a_yaml_inventory_with_sealer_group_names(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text(
        "all:\n  children:\n    master:\n      hosts:\n        10.0.0.5:\n    node:\n      hosts:\n"
        "        worker-1:\n          ansible_host: 10.0.0.6\n          ansible_password: pw\n"
    )
    hosts = read_inventory(tmp_path / "hosts.yaml", DEFAULTS)
    assert [(h.address, h.role, h.ssh.pk) for h in hosts] == [
        ("10.0.0.5", "master", "/default/key"),
        ("10.0.0.6", "node", "/default/key"),
    ]
    assert hosts[1].ssh.password == "pw" and "pw" not in str(hosts[1].vars)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[node]\n10.0.0.1\n", "no host in the group master or kube_control_plane"),
        ("[master]\nm1 ansible_host=10.0.0.1 ansible_port=abc\n", "host m1: ansible_port 'abc' is not a number"),
        ("[master]\nm1 ansible_host=not_an_address!\n", "host m1"),
        ("[master]\n10.0.0.1\n[node]\n10.0.0.1\n", None),  # a master listed as node too stays a master
        ("{{{ not an inventory\n", "not an Ansible inventory"),
    ],
)
def test_inventories_sealer_cannot_use_are_refused_naming_the_file(
    tmp_path: Path, text: str, message: str | None
) -> None:
    path = tmp_path / "inv.ini"
    path.write_text(text)
    if message is None:
        assert [(h.address, h.role) for h in read_inventory(path, DEFAULTS)] == [("10.0.0.1", "master")]
        return
    with pytest.raises(ClusterfileError) as err:
        read_inventory(path, DEFAULTS)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_inventory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClusterfileError, match="no such inventory"):
        read_inventory(tmp_path / "nope.yaml", DEFAULTS)


def test_the_operators_variables_are_plain_values_sealer_can_write(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "hosts.yaml").write_text(
        'all:\n  vars:\n    labels: {zone: a, ids: [1, 2]}\n    note: \'{{ "x" ~ "y" }}\'\n'
        "  children:\n    master:\n      hosts:\n        10.0.0.5:\n"
    )
    (host,) = read_inventory(tmp_path / "hosts.yaml", DEFAULTS)
    assert yaml.safe_load(yaml.safe_dump(host.vars)) == {"labels": {"zone": "a", "ids": [1, 2]}, "note": "xy"}
    assert all(type(k) is str for k in host.vars) and type(host.vars["note"]) is str
