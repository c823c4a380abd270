"""Clusterfile and host-list parsing, platform detection output, and the inventory (golden file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from sealer.cluster.clusterfile import SSHConfig, from_flags, parse_clusterfile, to_clusterfile
from sealer.cluster.hosts import HostFacts, parse_detection
from sealer.cluster.inventory import build_inventory, dump_inventory
from sealer.errors import ClusterfileError, HostError
from sealer.oci.platform import Platform

GOLDEN = Path(__file__).parent / "golden"
KEY = SSHConfig(pk="/keys/id_ed25519")

CLUSTERFILE = """\
apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: prod
spec:
  image: kubernetes-multi-arch:v1.19.8
  ssh:
    user: root
    pk: /keys/id_ed25519
    port: "22"
  hosts:
    - ips: [10.0.0.1, 10.0.0.2]
      roles: [master]
    - ips: [10.0.0.3]
      roles: [node]
      ssh:
        port: "2222"
  env:
    - REGION=north
  cmd:
    - kubectl apply -f manifests/dashborad.yaml
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Clusterfile"
    path.write_text(text)
    return path


def test_clusterfile_parses_hosts_roles_ssh_env_cmd(tmp_path: Path) -> None:
    cluster = parse_clusterfile(write(tmp_path, CLUSTERFILE))
    assert cluster.name == "prod"
    assert str(cluster.image) == "kubernetes-multi-arch:v1.19.8"
    assert [(h.address, h.role, h.ssh.port) for h in cluster.hosts] == [
        ("10.0.0.1", "master", 22),
        ("10.0.0.2", "master", 22),
        ("10.0.0.3", "node", 2222),
    ]
    assert cluster.hosts[2].ssh.pk == "/keys/id_ed25519"
    assert cluster.env == {"REGION": "north"}
    assert cluster.cmd == ["kubectl apply -f manifests/dashborad.yaml"]
    assert cluster.registry_host == "10.0.0.1"
    assert cluster.registry_hosts == ["10.0.0.1", "10.0.0.2"]  # every master serves a replica
    cluster.registry = "10.0.0.3"  # a registry host the Clusterfile names is the only one
    assert (cluster.registry_host, cluster.registry_hosts) == ("10.0.0.3", ["10.0.0.3"])
    again = parse_clusterfile(write(tmp_path, to_clusterfile(cluster)))
    assert [(h.address, h.role) for h in again.hosts] == [(h.address, h.role) for h in cluster.hosts]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    user: root\n", "    user: root\n    color: blue\n"), "Clusterfile:9: unknown field 'spec.ssh.color'"),
        (("spec:\n", "spec:\n  replicas: 3\n"), "Clusterfile:6: unknown field 'spec.replicas'"),
        (("[10.0.0.3]", "[10.0.0.1]"), "10.0.0.1 is both master and node"),
        (("[10.0.0.1, 10.0.0.2]", "[10.0.0.1, 10.0.0.1]"), "10.0.0.1 is listed twice as master"),
        (("[10.0.0.3]", "[10.0.0.300]"), "'10.0.0.300' is not an IP address"),
        (("roles: [node]", "roles: [worker]"), "needs one role: master or node"),
        (("sealer.cloud/v2", "sealer.cloud/v1"), "apiVersion must be sealer.cloud/v2"),
        (('port: "2222"', 'port: "http"'), "ssh.port 'http' is not a number"),
        (("  env:\n    - REGION=north\n", "  env:\n    - REGION\n"), "spec.env entry 'REGION' is not key=value"),
        (("  hosts:\n", "  hosts: {}\n  x:\n"), "Clusterfile:11: spec.hosts must be a list"),
        (("kind: Cluster", "kind: Plan"), "exactly one document of kind Cluster"),
        (("    - ips: [10.0.0.1, 10.0.0.2]\n      roles: [master]\n", ""), "at least one master"),
        (("  image: k", "  image: [k"), "not valid YAML"),
    ],
)
def test_clusterfile_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert change[0] in CLUSTERFILE
    with pytest.raises(ClusterfileError) as err:
        parse_clusterfile(write(tmp_path, CLUSTERFILE.replace(*change)))
    assert message in str(err.value)
    assert str(err.value).count("\n") == 0


def test_host_flags() -> None:
    cluster = from_flags("app:1", "10.0.0.1-10.0.0.3", "10.0.0.9", KEY, "c")
    assert [(h.address, h.role) for h in cluster.hosts] == [
        ("10.0.0.1", "master"),
        ("10.0.0.2", "master"),
        ("10.0.0.3", "master"),
        ("10.0.0.9", "node"),
    ]
    for masters, nodes, message in [
        ("10.0.0.1", "10.0.0.1", "both master and node"),
        ("10.0.0.1,10.0.0.1", None, "listed twice"),
        ("10.0.0.1,", None, "empty address"),
        ("host.example", None, "not an IP address"),
        ("10.0.0.5-10.0.0.1", None, "bad address range"),
    ]:
        with pytest.raises(ClusterfileError, match=message):
            from_flags("app:1", masters, nodes, KEY, "c")


@pytest.mark.parametrize(
    ("out", "platform"),
    [
        ("x86_64\nhost-a\n", "linux/amd64"),
        ("aarch64\nhost-b\nCPU architecture: 8\n", "linux/arm64/v8"),
        ("armv7l\nhost-c\nCPU architecture: 7\n", "linux/arm/v7"),
    ],
)
def test_platform_detection_output(out: str, platform: str) -> None:
    facts = parse_detection("10.0.0.1", 0, out, "")
    assert facts.platform == Platform.parse(platform)
    assert facts.hostname.startswith("host-")


def test_platform_detection_failures() -> None:
    with pytest.raises(HostError, match=r"^10.0.0.1: unknown machine type 'sparc64'"):
        parse_detection("10.0.0.1", 0, "sparc64\nh\n", "")
    with pytest.raises(HostError, match="cannot read the machine type: sh: uname: not found"):
        parse_detection("10.0.0.1", 127, "", "sh: uname: not found\n")


def test_inventory_matches_golden_file(tmp_path: Path) -> None:
    cluster = parse_clusterfile(write(tmp_path, CLUSTERFILE))
    facts = {
        "10.0.0.1": HostFacts("10.0.0.1", Platform.parse("linux/amd64"), "m1"),
        "10.0.0.2": HostFacts("10.0.0.2", Platform.parse("linux/arm64"), "m2"),
        "10.0.0.3": HostFacts("10.0.0.3", Platform.parse("linux/arm64"), "n1"),
    }
    ids = {Platform.parse("linux/amd64"): "a" * 64, Platform.parse("linux/arm64"): "b" * 64}
    text = dump_inventory(build_inventory(cluster, facts, Path("/var/lib/sealer/clusters/prod"), ids))
    golden = GOLDEN / "inventory.yaml"
    if os.environ.get("SEALER_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    inv = yaml.safe_load(text)
    groups = inv["all"]["children"]
    assert set(groups["linux_arm64"]["hosts"]) == {"10.0.0.2", "10.0.0.3"}
    assert set(groups["linux_amd64"]["hosts"]) == {"10.0.0.1"}
    # every master serves a replica of the registry, master0 first
    assert list(groups["registry"]["hosts"]) == ["10.0.0.1", "10.0.0.2"]
    assert "passw" not in text


def test_a_changed_host_list_is_named_with_the_command_that_does_it() -> None:
    from sealer.cluster.deploy import host_list_changes

    ssh = SSHConfig()
    old = from_flags("img:1", "10.0.0.1", "10.0.0.2,10.0.0.3", ssh, "prod")
    assert host_list_changes(old, from_flags("img:1", "10.0.0.1", "10.0.0.3,10.0.0.2", ssh, "prod")) == ""
    changed = host_list_changes(old, from_flags("img:1", "10.0.0.1,10.0.0.2", "10.0.0.4", ssh, "prod"))
    assert changed == (
        "10.0.0.2 is a node of it, this run makes it a master (sealer delete -n 10.0.0.2 --cluster prod first); "
        "this run adds node 10.0.0.4 (sealer join -n 10.0.0.4 --cluster prod); "
        "this run leaves out node 10.0.0.3 (sealer delete -n 10.0.0.3 --cluster prod)"
    )
