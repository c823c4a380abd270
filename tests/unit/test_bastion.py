"""Bastions (jump hosts): how a user names one (--bastion, spec.ssh.bastion, an inventory's
ProxyJump), what the generated inventory tells ssh and rsync, and a bastion that cannot be
reached said in one line naming it."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import paramiko
import pytest
import yaml

from sealer.cluster.clusterfile import Bastion, SSHConfig, parse_bastion, parse_clusterfile, to_clusterfile
from sealer.cluster.hosts import HostFacts
from sealer.cluster.inventory import build_inventory
from sealer.cluster.inventory_file import read_inventory
from sealer.errors import ClusterfileError
from sealer.oci.platform import Platform


def test_bastion_syntax() -> None:
    assert parse_bastion("ops@10.0.0.9:2222", "--bastion", SSHConfig(pk="/k")) == Bastion("10.0.0.9", "ops", 2222, "/k")
    assert parse_bastion("10.0.0.9", "--bastion", SSHConfig(user="me")) == Bastion("10.0.0.9", "me", 22, None)
    assert parse_bastion("root@[fd00::9]:22", "x", SSHConfig()).address == "fd00::9"
    assert str(Bastion("fd00::9", "root", 2200)) == "root@[fd00::9]:2200"
    for bad, said in [("ops@", "not an IP address"), ("10.0.0.9:0", "out of range"), ("10.0.0.9:ssh", "not a number"),
                      ("a@b@10.0.0.9", "not an IP address"), ("10.0.0.1,10.0.0.2", "one bastion")]:  # fmt: skip
        with pytest.raises(ClusterfileError, match=f"^--bastion.*{said}"):
            parse_bastion(bad, "--bastion", SSHConfig())


CLUSTERFILE = """\
apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: prod
spec:
  image: kubernetes-multi-arch:v1.19.8
  ssh:
    user: ops
    pk: /keys/hosts
    bastion: {bastion}
  hosts:
    - ips: [10.1.0.1]
      roles: [master]
    - ips: [10.1.0.2]
      roles: [node]
      ssh:
        bastion: jump@10.0.0.8
"""


def test_clusterfile_bastion_as_text_or_mapping_and_saved_with_the_cluster(tmp_path: Path) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(CLUSTERFILE.format(bastion="10.0.0.9:2222"))
    cluster = parse_clusterfile(path)
    # the bastion logs in as the hosts' user with their key unless it says otherwise
    assert cluster.hosts[0].ssh.bastion == Bastion("10.0.0.9", "ops", 2222, "/keys/hosts")
    assert cluster.hosts[1].ssh.bastion == Bastion("10.0.0.8", "jump", 22, "/keys/hosts")
    path.write_text(CLUSTERFILE.format(bastion="{host: 10.0.0.9, user: jump, pk: /keys/bastion}"))
    cluster = parse_clusterfile(path)
    assert cluster.ssh.bastion == Bastion("10.0.0.9", "jump", 22, "/keys/bastion")
    saved = tmp_path / "saved"
    saved.write_text(to_clusterfile(cluster))
    assert parse_clusterfile(saved).ssh.bastion == cluster.ssh.bastion
    path.write_text(CLUSTERFILE.format(bastion="{host: 10.0.0.9, password: secret}"))
    with pytest.raises(ClusterfileError, match=r"Clusterfile:\d+: unknown field 'spec.ssh.bastion.password'"):
        parse_clusterfile(path)
    path.write_text(CLUSTERFILE.format(bastion="bastion.example"))
    with pytest.raises(ClusterfileError, match=r"Clusterfile:\d+: spec.ssh.bastion 'bastion.example' is not an IP"):
        parse_clusterfile(path)


def test_an_inventorys_proxyjump_is_the_hosts_bastion(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(
        "[master]\nm1 ansible_host=10.1.0.1"
        " ansible_ssh_common_args='-o ProxyJump=jump@10.0.0.9:2222 -o Compression=yes'\n"
        "[node]\nn1 ansible_host=10.1.0.2 ansible_ssh_common_args='-J 10.0.0.9'\n"
        "n2 ansible_host=10.1.0.3\n"
    )
    m1, n1, n2 = read_inventory(tmp_path / "hosts.ini", SSHConfig(user="ops", pk="/keys/id"))
    assert m1.ssh.bastion == Bastion("10.0.0.9", "jump", 2222, "/keys/id")
    assert n1.ssh.bastion == Bastion("10.0.0.9", "ops", 22, "/keys/id")
    assert n2.ssh.bastion is None
    (tmp_path / "hosts.ini").write_text(
        "[master]\nm1 ansible_host=10.1.0.1 ansible_ssh_common_args='-o ProxyJump=10.0.0.9,10.0.0.8'\n"
    )
    with pytest.raises(ClusterfileError, match=r"hosts.ini: host m1: ansible_ssh_common_args .*one bastion"):
        read_inventory(tmp_path / "hosts.ini", SSHConfig())


def test_the_inventory_sends_ansible_and_rsync_through_the_bastion(tmp_path: Path) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(CLUSTERFILE.format(bastion="{host: 10.0.0.9, user: jump, pk: /keys/bastion}"))
    cluster = parse_clusterfile(path)
    cluster.hosts[1] = cluster.hosts[1].__class__(
        cluster.hosts[1].address, "node", cluster.hosts[1].ssh, {"ansible_ssh_common_args": "-J 10.0.0.8 -C"}
    )
    facts = {h.address: HostFacts(h.address, Platform.parse("linux/amd64"), "h") for h in cluster.hosts}
    cdir = Path("/var/lib/sealer/clusters/prod")
    inv = build_inventory(cluster, facts, cdir, {Platform.parse("linux/amd64"): "a" * 64})
    m1 = shlex.split(inv["all"]["hosts"]["10.1.0.1"]["ansible_ssh_common_args"])
    proxy = next(a.removeprefix("ProxyCommand=") for a in m1 if a.startswith("ProxyCommand="))
    jump = shlex.split(proxy)
    assert jump[0] == "ssh" and jump[-1] == "jump@10.0.0.9" and jump[-3:-1] == ["-W", "[%h]:%p"]
    # the bastion's key is checked as the hosts' are: the cluster's known_hosts, strictly
    assert f"UserKnownHostsFile={cdir / 'known_hosts'}" in jump and "StrictHostKeyChecking=yes" in jump
    assert jump[jump.index("-i") + 1] == "/keys/bastion" and "BatchMode=yes" in jump
    n1 = shlex.split(inv["all"]["hosts"]["10.1.0.2"]["ansible_ssh_common_args"])
    # the operator's own ProxyJump gives way to sealer's ProxyCommand (ssh takes one of them)
    assert "-J" not in n1 and "-C" in n1 and any(a.endswith("@10.0.0.8") for a in shlex.split(
        next(a for a in n1 if a.startswith("ProxyCommand="))))  # fmt: skip
    assert yaml.safe_dump(inv).count("ProxyJump") == 0


def test_an_unreachable_bastion_is_one_line_naming_it(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]  # bound, never listening: connections are refused
    script = textwrap.dedent(f"""
        from pathlib import Path
        from sealer.cluster.clusterfile import Bastion, Host, SSHConfig
        from sealer.cluster.hosts import KnownHosts, detect
        from sealer.errors import HostsError
        ssh = SSHConfig(pk="/nonexistent", bastion=Bastion("127.0.0.1", "root", {port}, "/nonexistent"))
        hosts = [Host("10.254.0.1", "master", ssh), Host("10.254.0.2", "node", ssh)]
        try:
            detect(hosts, KnownHosts(Path({str(tmp_path / "known_hosts")!r})))
        except HostsError as err:
            print(err)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    closed.close()
    assert proc.stdout == f"bastion root@127.0.0.1:{port}: unreachable: Connection refused\n", proc.stdout
    assert proc.stderr == ""


class _RefusesEveryKey(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_FAILED


def test_a_bastion_that_refuses_the_key_or_changed_its_host_key_is_one_line(tmp_path: Path) -> None:
    host_key = paramiko.Ed25519Key.from_private_key_file(_keygen(tmp_path / "bastion_host_key"))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transport.start_server(server=_RefusesEveryKey())
            transports.append(transport)

    threading.Thread(target=serve, daemon=True).start()
    known = tmp_path / "known_hosts"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from sealer.cluster.clusterfile import Bastion, Host, SSHConfig
        from sealer.cluster.hosts import KnownHosts, detect
        from sealer.errors import HostsError
        key = {_keygen(tmp_path / "id_ed25519")!r}
        ssh = SSHConfig(pk=key, bastion=Bastion("127.0.0.1", "jump", {port}, key))
        try:
            detect([Host("10.254.0.1", "master", ssh)], KnownHosts(Path({str(known)!r})))
        except HostsError as err:
            print(err)
    """)
    try:
        refused = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert refused.stdout == f"bastion jump@127.0.0.1:{port}: authentication failed for user jump\n"
        assert refused.stderr == ""
        # its host key is checked in the cluster's known_hosts as a host's is: another one there is refused
        other = paramiko.Ed25519Key.from_private_key_file(_keygen(tmp_path / "other_host_key"))
        known.write_text(f"[127.0.0.1]:{port} ssh-ed25519 {other.get_base64()}\n")
        changed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert changed.stdout.startswith(f"bastion jump@127.0.0.1:{port}: host key changed"), changed.stdout
        assert changed.stdout.count("\n") == 1 and changed.stderr == ""
    finally:
        server.close()
        for transport in transports:
            transport.close()


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)
