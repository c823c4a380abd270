"""One cluster per host: detection reads the record the preflight role writes in sealer's data
root (``.cluster``), and a run or join of another cluster is refused before anything changes,
naming the host and the cluster it belongs to. And every host reaches the addresses sealer writes
for it (the registry host, the API endpoint): detection asks the host's routes, before any change."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sealer.cluster.clusterfile import Cluster, Host, SSHConfig
from sealer.cluster.deploy import reach_plan
from sealer.cluster.hosts import HostFacts, check_owners, check_reach, detect_command, parse_detection
from sealer.errors import HostsError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference


def facts(**owners: str) -> dict[str, HostFacts]:
    amd = Platform.parse("linux/amd64")
    return {address: HostFacts(address, amd, "h", cluster=owner) for address, owner in owners.items()}


def test_the_detection_command_reads_the_record_of_the_hosts_data_root(tmp_path: Path) -> None:
    root = tmp_path / "sealer"
    host = Host("10.0.0.1", "master", SSHConfig(), vars={"sealer_data_root": str(root)})
    out = subprocess.run(["sh", "-c", detect_command(host)], capture_output=True, text=True, check=True).stdout
    assert "sealer-cluster=" not in out  # no record: the host is free
    root.mkdir()
    (root / ".cluster").write_text("prod\n")
    out = subprocess.run(["sh", "-c", detect_command(host)], capture_output=True, text=True, check=True).stdout
    read = parse_detection("10.0.0.1", 0, out, "")
    assert read.cluster == "prod" and read.hostname and str(read.platform).startswith("linux/")


def test_the_record_line_is_not_taken_for_the_cpu() -> None:
    read = parse_detection("10.0.0.1", 0, "aarch64\nn1\nCPU architecture: 8\nsealer-cluster=a\n", "")
    assert read.cluster == "a" and read.platform == Platform.parse("linux/arm64/v8")


def test_a_host_of_another_cluster_is_refused_naming_it() -> None:
    with pytest.raises(HostsError) as err:
        check_owners("b", facts(**{"10.0.0.1": "a", "10.0.0.2": "", "10.0.0.3": "b", "10.0.0.4": "x y"}))
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("10.0.0.1: ") and "belongs to cluster a " in lines[0]
    assert lines[1].startswith("10.0.0.4: ") and "belongs to cluster 'x y'" in lines[1]


def test_free_hosts_and_the_clusters_own_pass() -> None:
    check_owners("b", facts(**{"10.0.0.1": "", "10.0.0.2": "b"}))


def test_a_host_without_a_route_to_an_address_sealer_writes_is_named_with_it(tmp_path: Path) -> None:
    host = Host("10.0.0.2", "node", SSHConfig(), vars={"sealer_data_root": str(tmp_path)})
    command = detect_command(host, ("127.0.0.1", "192.0.2.7"))
    # a network namespace with nothing but a loopback that is down: no route anywhere
    out = subprocess.run(["unshare", "-n", "sh", "-c", command], capture_output=True, text=True, check=True).stdout
    read = parse_detection("10.0.0.2", 0, out, "")
    assert [a for a, _ in read.unreachable] == ["127.0.0.1", "192.0.2.7"], out
    assert "unreachable" in read.unreachable[1][1].lower(), read.unreachable
    with pytest.raises(HostsError) as err:
        check_reach({"10.0.0.2": read}, {"192.0.2.7": "the registry host and the API endpoint"})
    lines = str(err.value).splitlines()
    assert lines[1].startswith("10.0.0.2: cannot reach 192.0.2.7, the registry host and the API endpoint: ")
    # where the routes are there (this machine's loopback), nothing is said
    out = subprocess.run(["sh", "-c", detect_command(host, ("127.0.0.1",))], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert parse_detection("10.0.0.2", 0, out, "").unreachable == ()


def test_each_host_is_asked_about_the_registry_host_and_the_api_endpoint_it_is_given() -> None:
    ssh = SSHConfig()
    hosts = [Host("10.0.0.1", "master", ssh), Host("10.0.0.2", "master", ssh), Host("10.0.0.3", "node", ssh)]
    cluster = Cluster("c", Reference.parse("kubernetes:v1"), ssh, hosts)
    plan, uses = reach_plan(cluster)
    # masters resolve the API server's name to themselves; the registry is master0's
    assert plan == {"10.0.0.1": (), "10.0.0.2": ("10.0.0.1",), "10.0.0.3": ("10.0.0.1",)}
    assert uses == {"10.0.0.1": "the registry host and the API endpoint"}
