"""sealer run onto the sandbox: every host gets the rootfs of its own platform."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sealer.cluster.collection import collections_path
from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir, run_cluster, skopeo_raw, standin_log
from tests.helpers import SEALER, Sealer

ELF_MACHINE = {"amd64": "3e00", "arm64": "b700"}
ROOTFS = "/var/lib/sealer/data/{cluster}/rootfs"
TREE_HASH = "cd {root} && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum"


def elf_machine(host: SandboxHost, path: str) -> str:
    code = f"print(open('{path}', 'rb').read(20)[18:20].hex())"
    return host.ssh(f'python3 -c "{code}"').stdout.strip()


@pytest.fixture(scope="module")
def small(run_store: Sealer, sandbox: Sandbox) -> Iterator[dict[str, object]]:
    """One amd64 master, one arm64 node; deleted when the module is done."""
    proc = run_cluster(run_store, "small", [sandbox.hosts[0]], [sandbox.hosts[1]])
    result: dict[str, object] = json.loads(proc.stdout)
    yield result
    run_store.run("delete", "--all", "--cluster", "small")


def test_each_host_gets_the_helm_of_its_own_machine(small: dict[str, object], sandbox: Sandbox) -> None:
    for host in sandbox.hosts[:2]:
        root = ROOTFS.format(cluster="small")
        assert elf_machine(host, f"{root}/bin/helm") == ELF_MACHINE[host.arch]
        version = host.ssh(f"{root}/bin/helm version").stdout
        assert f'GoArch:"{host.arch}"' in version
        assert host.ssh(f"test -d {root}/registry", check=False).returncode == 1
        # init.sh ran on the host, under its own architecture
        machine = {"amd64": "x86_64", "arm64": "aarch64"}[host.arch]
        assert f"init.sh[{machine}] {root}" in host.ssh("cat /var/lib/sealer/data/small/standin-calls.log").stdout


def test_inventory_groups_match_detected_platforms(
    small: dict[str, object], run_store: Sealer, sandbox: Sandbox
) -> None:
    path = cluster_dir(run_store, "small") / "inventory.yaml"
    assert path.stat().st_mode & 0o777 == 0o600
    inv = yaml.safe_load(path.read_text())
    groups = inv["all"]["children"]
    a, b = sandbox.hosts[0].address, sandbox.hosts[1].address
    assert list(groups["master"]["hosts"]) == [a]
    assert list(groups["node"]["hosts"]) == [b]
    assert list(groups["linux_amd64"]["hosts"]) == [a]
    assert list(groups["linux_arm64"]["hosts"]) == [b]
    assert list(groups["registry"]["hosts"]) == [a]
    assert inv["all"]["hosts"][b]["sealer_platform"] == "linux/arm64/v8"
    # a user can use it with plain ansible against the same hosts
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "linux_arm64", "-i", str(path),
         "-m", "ansible.builtin.command", "-a", "uname -m"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "aarch64" in out and a not in out


def test_second_run_changes_nothing(small: dict[str, object], run_store: Sealer, sandbox: Sandbox) -> None:
    again = json.loads(run_cluster(run_store, "small", [sandbox.hosts[0]], [sandbox.hosts[1]]).stdout)
    assert [(h["address"], h["changed"], h["changedTasks"]) for h in again["hosts"]] == [
        (sandbox.hosts[0].address, 0, []),
        (sandbox.hosts[1].address, 0, []),
    ]
    # nothing initialised, joined or run again; the registry still serving
    log = standin_log(sandbox.hosts[0], "small")
    assert len([c for _t, c in log if " init --config" in c]) == 1
    assert len([c for _t, c in log if c.startswith("helm")]) == 1
    assert len([c for _t, c in standin_log(sandbox.hosts[1], "small") if " join " in c]) == 1
    raw = skopeo_raw(sandbox.hosts[0].address, "kubernetesui/dashboard:v2.5.1")
    assert len(raw["manifests"]) == 2  # type: ignore[arg-type]
    for host in sandbox.hosts[:2]:
        assert host.ssh("getent hosts sea.hub").stdout.split()[0] == sandbox.hosts[0].address


def own_playbook(inventory: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """A user's own playbook with sealer's inventory and roles: only the preflight role."""
    playbook = workdir / "own.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  roles: [sealer.cluster.sealer_preflight]\n")
    collections = collections_path(workdir)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def test_own_playbook_with_the_inventory_checks_every_host(
    small: dict[str, object], run_store: Sealer, sandbox: Sandbox, tmp_path: Path
) -> None:
    path = cluster_dir(run_store, "small") / "inventory.yaml"
    ok = own_playbook(path, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    a, b = sandbox.hosts[0].address, sandbox.hosts[1].address
    # the node is arm64; an inventory that says otherwise is refused, naming the host
    inv = yaml.safe_load(path.read_text())
    inv["all"]["hosts"][b]["sealer_arch"] = "amd64"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(inv))
    proc = own_playbook(wrong, tmp_path)
    assert proc.returncode != 0
    assert f"{b} says it is aarch64 but the inventory says amd64" in proc.stdout, proc.stdout
    # a host without the variables sealer's inventory gives is refused, naming the variable
    inv["all"]["hosts"][b]["sealer_arch"] = "arm64"
    del inv["all"]["hosts"][a]["sealer_arch"]
    wrong.write_text(yaml.safe_dump(inv))
    proc = own_playbook(wrong, tmp_path)
    assert proc.returncode != 0
    assert f"{a}: inventory variable sealer_arch is not set" in proc.stdout, proc.stdout


def untouched(sandbox: Sandbox, cluster: str) -> None:
    for host in sandbox.hosts:
        assert host.ssh(f"test -e /var/lib/sealer/data/{cluster}", check=False).returncode == 1, host.address


def test_unreachable_host_is_refused_before_any_change(run_store: Sealer, sandbox: Sandbox) -> None:
    nowhere = SandboxHost("nowhere", sandbox.hosts[0].address.rsplit(".", 1)[0] + ".250", "linux/amd64", sandbox.key)
    proc = run_cluster(run_store, "refused1", [sandbox.hosts[0]], [nowhere, sandbox.hosts[1]], check=False)
    assert proc.returncode == 1
    assert f"sealer: error: {nowhere.address}: unreachable on port 22" in proc.stderr
    untouched(sandbox, "refused1")


def test_wrong_key_is_refused_before_any_change(run_store: Sealer, sandbox: Sandbox, tmp_path: Path) -> None:
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    proc = run_cluster(run_store, "refused2", [sandbox.hosts[0]], [sandbox.hosts[1]], key=str(key), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, "one line per host"
    assert "authentication failed for user root" in lines[1]
    untouched(sandbox, "refused2")


def test_duplicate_address_is_refused_before_any_host_is_contacted(run_store: Sealer, sandbox: Sandbox) -> None:
    h = sandbox.hosts[0]
    proc = run_cluster(run_store, "refused3", [h], [h], check=False)
    assert proc.returncode == 1
    assert f"{h.address} is both master and node" in proc.stderr
    assert not (cluster_dir(run_store, "refused3") / "known_hosts").exists()


def test_image_without_the_arm64_platform_is_refused(run_store: Sealer, sandbox: Sandbox) -> None:
    run_store.run("tag", "kubernetes-multi-arch:v1.19.8", "amd64-only:1")
    run_store.run("rmi", "amd64-only:1", "--platform", "linux/arm64")
    # hosts of no cluster (0 and 1 may be the small cluster's: another cluster is refused on them first)
    amd, arm = sandbox.hosts[2], sandbox.hosts[3]
    proc = run_cluster(run_store, "refused4", [amd], [arm], image="amd64-only:1", check=False)
    assert proc.returncode == 1
    assert f"{arm.address}: is linux/arm64/v8, and image amd64-only:1 has no manifest for it" in proc.stderr
    untouched(sandbox, "refused4")


def test_changed_host_key_is_refused(run_store: Sealer, sandbox: Sandbox, small: dict[str, object]) -> None:
    known = cluster_dir(run_store, "small") / "known_hosts"
    original = known.read_text()
    target = sandbox.hosts[1].address
    other_key = Path(sandbox.key + ".pub").read_text().split()[1]  # a valid ed25519 key, not the host's
    assert f"{target} ssh-ed25519 " in original
    known.write_text(
        "".join(
            f"{target} ssh-ed25519 {other_key}\n" if line.startswith(target + " ") else line
            for line in original.splitlines(keepends=True)
        )
    )
    try:
        proc = run_cluster(run_store, "small", [sandbox.hosts[0]], [sandbox.hosts[1]], check=False)
        assert proc.returncode == 1
        assert f"{target}: host key changed" in proc.stderr
    finally:
        known.write_text(original)


def test_a_run_with_other_hosts_does_not_redefine_the_cluster(
    small: dict[str, object], run_store: Sealer, sandbox: Sandbox
) -> None:
    a, b, c = sandbox.hosts[0], sandbox.hosts[1], sandbox.hosts[2]
    before = (cluster_dir(run_store, "small") / "Clusterfile").read_text()
    proc = run_cluster(run_store, "small", [a], [b, c], check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"this run adds node {c.address} (sealer join -n {c.address} --cluster small)" in proc.stderr
    proc = run_cluster(run_store, "small", [a, b], [], check=False)
    assert f"{b.address} is a node of it, this run makes it a master" in proc.stderr, proc.stderr
    proc = run_cluster(run_store, "small", [a], [], check=False)
    assert f"this run leaves out node {b.address} (sealer delete -n {b.address} --cluster small)" in proc.stderr
    assert (cluster_dir(run_store, "small") / "Clusterfile").read_text() == before
    assert c.ssh("test -e /var/lib/sealer/data/small", check=False).returncode == 1


def test_user_without_sudo_is_refused_before_any_change(run_store: Sealer, sandbox: Sandbox) -> None:
    master, node = sandbox.hosts[0], sandbox.hosts[1]
    add_user = (
        "useradd -m -s /bin/sh nosudo && install -d -o nosudo -m 700 /home/nosudo/.ssh"
        " && install -o nosudo -m 600 /home/sealer/.ssh/authorized_keys /home/nosudo/.ssh/"
    )
    for host in (master, node):
        host.ssh(add_user)
    try:
        args = ["run", "kubernetes-multi-arch:v1.19.8", "-m", master.address, "-n", node.address, "-u", "nosudo",
                "--pk", master.key, "--cluster", "refused5"]  # fmt: skip
        proc = run_store.run(*args, check=False)
        assert proc.returncode == 1
        # told that the user cannot sudo, not to give a password that cannot help
        cannot = "user nosudo cannot become root with sudo: sudo says nosudo may not run sudo"
        assert proc.stderr.strip().splitlines() == [f"sealer: error: {master.address}: {cannot}",
                                                    f"{node.address}: {cannot}"]  # fmt: skip
        env = {**run_store.env(), "SEALER_BECOME_PASSWORD": "not-a-sudoer"}
        proc = subprocess.run([*SEALER, *args], env=env, capture_output=True, text=True, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 2, proc.stderr
        for line, host in zip(lines, (master, node), strict=True):
            assert f"{host.address}: user nosudo cannot become root with sudo: " in line
            assert "not-a-sudoer" not in line
        untouched(sandbox, "refused5")
    finally:
        for host in (master, node):
            host.ssh("userdel -r nosudo", check=False)


def test_image_without_a_kubeadm_configuration_is_refused(run_store: Sealer, sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "Kubefile").write_text("FROM scratch\nCOPY bin bin\n")
    run_store.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "no-kubeadm:1", str(tmp_path))
    hosts = sandbox.hosts[2:4]  # of no cluster: on the small cluster's hosts another cluster is refused first
    keys = {h.address: h.ssh("cat /root/.ssh/authorized_keys").stdout for h in hosts}
    proc = run_cluster(run_store, "refused6", hosts[:1], hosts[1:], image="no-kubeadm:1", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("sealer: error: image no-kubeadm:1 (linux/amd64) has no etc/kubeadm.yml"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    untouched(sandbox, "refused6")
    assert {h.address: h.ssh("cat /root/.ssh/authorized_keys").stdout for h in hosts} == keys
