"""Hosts behind a bastion: a sandbox of its own (a bastion with a leg on each bridge and no IP
forwarding, an amd64 and an arm64 host on an internal bridge the controller has no address on).
Detection, host-key trust, preflight, Ansible and the rsync transfers all go through the bastion:
a direct connection to an internal host cannot succeed, so a run that works went through it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import SandboxHost, cluster_dir, sandbox_cli, standin_log
from tests.e2e.test_run import ELF_MACHINE, ROOTFS, TREE_HASH, elf_machine
from tests.helpers import SEALER, Sealer

IMAGE = "kubernetes-multi-arch:v1.19.8"


@dataclass
class Behind(SandboxHost):
    """An internal host, looked at by the tests through the bastion (plain OpenSSH)."""

    bastion: str = ""

    def ssh(self, command: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        jump = (
            f"ssh -i {self.key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
            f" -o BatchMode=yes -W %h:%p root@{self.bastion}"
        )
        proc = subprocess.run(
            ["ssh", "-i", self.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", f"ProxyCommand={jump}",
             f"root@{self.address}", command],
            capture_output=True, text=True, check=False, timeout=120, input=input,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.address} (through {self.bastion}): {command}: {proc.returncode} {proc.stderr}")
        return proc


@dataclass
class Topology:
    name: str
    bastion: SandboxHost
    amd: Behind
    arm: Behind
    rows: list[dict[str, object]]


@pytest.fixture(scope="module")
def behind() -> Iterator[Topology]:
    name = f"b{os.getpid()}"[:12]
    proc = sandbox_cli("up", name, "--hosts", "amd64,amd64,arm64", "--bastion", "1")
    if proc.returncode != 0:
        sandbox_cli("down", name)
        pytest.fail(f"sandbox up failed: {proc.stderr}")
    rows = [r for r in json.loads(sandbox_cli("ls", "--output", "json").stdout) if r["sandbox"] == name]
    try:
        b = rows[0]
        bastion = SandboxHost(b["name"], b["address"], b["platform"], b["key"], b["netns"], b["link"], user="root")
        amd, arm = (
            Behind(r["name"], r["address"], r["platform"], r["key"], r["netns"], r["link"], "root", b["address"])
            for r in rows[1:]
        )
        yield Topology(name, bastion, amd, arm, rows)
    finally:
        down = sandbox_cli("down", name)
        assert down.returncode == 0, down.stderr
    # the internal bridge and every veth went with the sandbox
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    for row in rows:
        for link in [row["link"], *(row.get("innerLink") or "",)]:
            assert not link or (f" {link}@" not in links and f" {link}:" not in links), link
    assert not any(str(r.get("internalBridge") or "") and f" {r['internalBridge']}:" in links for r in rows)


def direct_ssh(host: SandboxHost) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", host.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"root@{host.address}", "true"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_internal_hosts_are_reached_only_through_the_bastion(behind: Topology) -> None:
    by_address = {r["address"]: r for r in behind.rows}
    assert by_address[behind.bastion.address]["internal"] is False
    assert by_address[behind.bastion.address]["bastion"] is True
    for host in (behind.amd, behind.arm):
        assert by_address[host.address]["internal"] is True
        assert direct_ssh(host).returncode == 255, f"{host.address} is reachable without the bastion"
        assert host.ssh("uname -m").stdout.strip() == {"amd64": "x86_64", "arm64": "aarch64"}[host.arch]
    # the bastion forwards nothing itself: only its sshd carries a connection inward
    forward = subprocess.run(
        ["ip", "netns", "exec", behind.bastion.netns, "sysctl", "-n", "net.ipv4.ip_forward"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert forward == "0"


def trees_of_their_own_arch(cluster: str, hosts: list[Behind]) -> None:
    root = ROOTFS.format(cluster=cluster)
    trees = {h.address: h.ssh(TREE_HASH.format(root=root)).stdout.split()[0] for h in hosts}
    assert len(set(trees.values())) == 2, "the amd64 and the arm64 host must get different trees"
    for host in hosts:
        assert elf_machine(host, f"{root}/bin/helm") == ELF_MACHINE[host.arch]


def test_a_mixed_cluster_runs_through_the_bastion_and_a_rerun_changes_nothing(
    run_store: Sealer, behind: Topology
) -> None:
    amd, arm, jump = behind.amd, behind.arm, behind.bastion
    args = ["run", IMAGE, "-m", amd.address, "-n", arm.address, "--pk", amd.key, "--bastion", f"root@{jump.address}",
            "--cluster", "jumped", "--output", "json"]  # fmt: skip
    try:
        first = json.loads(run_store.run(*args).stdout)
        assert [(h["address"], h["platform"]) for h in first["hosts"]] == [
            (amd.address, "linux/amd64"),
            (arm.address, "linux/arm64/v8"),
        ]
        trees_of_their_own_arch("jumped", [amd, arm])
        cdir = cluster_dir(run_store, "jumped")
        # host-key trust as for direct hosts: the bastion's key and the hosts' keys are remembered
        known = (cdir / "known_hosts").read_text()
        assert all(a in known for a in (jump.address, amd.address, arm.address)), known
        # the bastion stays with the cluster, for join and delete
        saved = yaml.safe_load((cdir / "Clusterfile").read_text())["spec"]["ssh"]["bastion"]
        assert saved == {"host": f"root@{jump.address}:22", "pk": amd.key}
        again = json.loads(run_store.run(*args).stdout)
        assert [(h["address"], h["changed"], h["changedTasks"]) for h in again["hosts"]] == [
            (amd.address, 0, []),
            (arm.address, 0, []),
        ]
        assert len([c for _t, c in standin_log(amd, "jumped") if " init --config" in c]) == 1
    finally:
        done = run_store.run("delete", "--all", "--cluster", "jumped", check=False)
    assert done.returncode == 0, done.stderr
    assert arm.ssh("test -e /var/lib/sealer/data/jumped", check=False).returncode == 1


def test_an_inventory_with_proxyjump_runs_through_the_bastion(
    run_store: Sealer, behind: Topology, tmp_path: Path
) -> None:
    amd, arm, jump = behind.amd, behind.arm, behind.bastion
    inv = tmp_path / "hosts.yaml"
    inv.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_ssh_private_key_file": amd.key,
                 "ansible_ssh_common_args": f"-o ProxyJump=root@{jump.address}"},
        "children": {
            "kube_control_plane": {"hosts": {"cp-1": {"ansible_host": amd.address}}},
            "kube_node": {"hosts": {"worker-1": {"ansible_host": arm.address}}},
        },
    }}))  # fmt: skip
    try:
        result = json.loads(
            run_store.run("run", IMAGE, "-i", str(inv), "--cluster", "jumpinv", "--output", "json").stdout
        )
        assert [h["platform"] for h in result["hosts"]] == ["linux/amd64", "linux/arm64/v8"]
        trees_of_their_own_arch("jumpinv", [amd, arm])
    finally:
        done = run_store.run("delete", "--all", "--cluster", "jumpinv", check=False)
    assert done.returncode == 0, done.stderr
    assert amd.ssh("test -e /var/lib/sealer/data/jumpinv", check=False).returncode == 1


def test_a_bad_bastion_is_one_line_naming_it(run_store: Sealer, behind: Topology, tmp_path: Path) -> None:
    amd, jump = behind.amd, behind.bastion
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    cases = {
        # a key the bastion does not know: it is asked first, before any host
        "authentication failed": ["--pk", str(stranger), "--bastion", f"root@{jump.address}"],
        "unreachable": ["--pk", amd.key, "--bastion", f"root@{jump.address}:2"],
    }
    for said, extra in cases.items():
        proc = run_store.run(
            "run", IMAGE, "-m", amd.address, "--cluster", "bad", "--output", "json", *extra, check=False
        )
        assert proc.returncode != 0, said
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "bastion" in lines[0] and jump.address in lines[0] and said in lines[0], lines[0]
        assert "Traceback" not in proc.stderr


def test_join_and_delete_go_through_the_bastion_the_cluster_keeps(run_store: Sealer, behind: Topology) -> None:
    amd, arm, jump = behind.amd, behind.arm, behind.bastion
    run_store.run("run", IMAGE, "-m", amd.address, "--pk", amd.key, "--bastion", f"root@{jump.address}",
                  "--cluster", "jumpjoin", "--output", "json")  # fmt: skip
    try:
        # no --bastion: the new host is reached as the cluster's hosts are, through its bastion
        run_store.run("join", "-n", arm.address, "--cluster", "jumpjoin", "--output", "json")
        root = ROOTFS.format(cluster="jumpjoin")
        assert elf_machine(arm, f"{root}/bin/helm") == ELF_MACHINE["arm64"]
        run_store.run("delete", "-n", arm.address, "--cluster", "jumpjoin")
        assert arm.ssh("test -e /var/lib/sealer/data/jumpjoin", check=False).returncode == 1
    finally:
        done = run_store.run("delete", "--all", "--cluster", "jumpjoin", check=False)
    assert done.returncode == 0, done.stderr


def test_a_user_whose_sudo_asks_for_a_password_behind_the_bastion(run_store: Sealer, behind: Topology) -> None:
    """rsync's receiver reads sudo's password first on its stream (become-rsh): through the
    bastion's ProxyCommand too, and the password is written nowhere."""
    amd, jump = behind.amd, behind.bastion
    password = secrets.token_urlsafe(12)
    amd.ssh(
        "useradd --create-home --shell /bin/bash ops && chpasswd && install -d -m 700 -o ops -g ops ~ops/.ssh"
        " && install -m 600 -o ops -g ops ~/.ssh/authorized_keys ~ops/.ssh/"
        " && echo 'ops ALL=(ALL:ALL) ALL' > /etc/sudoers.d/ops",
        input=f"ops:{password}\n",
    )
    env = {**run_store.env(), "SEALER_BECOME_PASSWORD": password}
    sealer = [*SEALER, "run", IMAGE, "-m", amd.address, "-u", "ops", "--pk", amd.key,
              "--bastion", f"root@{jump.address}", "--cluster", "jumpsudo", "--output", "json"]  # fmt: skip
    try:
        proc = subprocess.run(sealer, env=env, capture_output=True, text=True, check=False, timeout=900)
        assert proc.returncode == 0, proc.stderr
        root = ROOTFS.format(cluster="jumpsudo")
        assert elf_machine(amd, f"{root}/bin/helm") == ELF_MACHINE["amd64"]
        assert amd.ssh(f"find {root} ! -user root | head -3").stdout == ""
        grep = ["grep", "-rlF", password, str(run_store.root)]
        leaked = subprocess.run(grep, capture_output=True, text=True, check=False)
        assert leaked.stdout == "", leaked.stdout
    finally:
        delete = [*SEALER, "delete", "--all", "--cluster", "jumpsudo"]
        done = subprocess.run(delete, env=env, capture_output=True, text=True, check=False, timeout=600)
        amd.ssh("rm -f /etc/sudoers.d/ops && userdel -r ops", check=False)
    assert done.returncode == 0, done.stderr


def test_a_bastion_member_named_by_its_outer_address_is_refused_before_any_change(
    run_store: Sealer, behind: Topology
) -> None:
    """The bastion as master0 by its outer address: the registry's and the API server's address
    for the inner node, which has no route to it. Refused at detection, naming both."""
    amd, jump = behind.amd, behind.bastion
    proc = run_store.run("run", IMAGE, "-m", jump.address, "-n", amd.address, "--pk", amd.key,
                         "--bastion", f"root@{jump.address}", "--cluster", "outer", check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = f"{amd.address}: cannot reach {jump.address}, the registry host and the API endpoint: "
    assert said in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not cluster_dir(run_store, "outer").exists()
    for host in (amd, jump):
        probe = "test -e /var/lib/sealer/data/outer || test -e /var/lib/sealer/data/.cluster"
        assert host.ssh(probe, check=False).returncode == 1, host.address
