"""sealer run --check: what a run would change on each host (files and bytes to send, the
registry, init, joins, CMDs), while nothing changes on any host nor in the cluster's state."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealer.cluster.check_report import Topology, host_check
from sealer.cluster.collection import collections_path
from sealer.cluster.results import Reports, host_report
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.store.image import get_image
from sealer.store.layout import Store
from sealer.store.mount import mounted_rootfs
from tests.e2e.conftest import SUDO_USER, Sandbox, SandboxHost, cluster_dir, host_state, run_cluster
from tests.helpers import ROOT, Sealer

CLUSTER = "dry"
CHANGED_IMAGE = "dry-changed:v1"


@pytest.fixture(scope="module")
def hosts(run_store: Sealer, sandbox: Sandbox) -> Iterator[list[SandboxHost]]:
    """An amd64 master and an arm64 node; the cluster and the image built here go at the end."""
    yield [sandbox.hosts[2], sandbox.hosts[3]]
    run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)
    run_store.run("rmi", CHANGED_IMAGE, check=False)


def check(run_store: Sealer, hosts: list[SandboxHost], *extra: str) -> dict[str, dict[str, Any]]:
    proc = run_cluster(run_store, CLUSTER, hosts[:1], hosts[1:], "-u", SUDO_USER, "--check", *extra)
    return {row["address"]: row for row in json.loads(proc.stdout)["hosts"]}


def processes(host: SandboxHost) -> list[str]:
    """The host's processes, less the logins' own: sshd's sessions (this look's, and the ones
    Ansible keeps open a while), their user managers, and this look's sudo, sh and ps. On an
    emulated host a process's arguments start with qemu's binfmt handler."""
    out = host.ssh("ps -eo comm,args --no-headers").stdout.splitlines()
    rows = [" ".join(line.split()) for line in out]
    logins = ("ps -eo comm,args", "systemd --user", "(sd-pam)")
    return sorted(r for r in rows if not r.startswith("sshd") and not any(x in r for x in logins))


def controller_state(cdir: Path) -> dict[str, str]:
    """Every file of the cluster's state on the controller and its hash, the runs' logs aside."""
    if not cdir.exists():
        return {}
    return {
        str(p.relative_to(cdir)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file() and not p.is_symlink()
        else ""
        for p in sorted(cdir.rglob("*"))
        if p.relative_to(cdir).parts[0] != "runs"
    }


def snapshot(hosts: list[SandboxHost]) -> dict[str, tuple[str, list[str]]]:
    return {h.address: (host_state(h), processes(h)) for h in hosts}


def assert_unchanged(before: dict[str, tuple[str, list[str]]], hosts: list[SandboxHost]) -> None:
    """Each host's tree and processes as before; a difference is shown line by line."""
    after = snapshot(hosts)
    for address, (tree, procs) in before.items():
        for what, old, new in (("tree", tree.splitlines(), after[address][0].splitlines()),
                               ("processes", procs, after[address][1])):  # fmt: skip
            assert old == new, f"{address} {what}:\n" + "\n".join(difflib.unified_diff(old, new, lineterm=""))


def test_check_on_fresh_hosts_reports_the_whole_run_and_changes_nothing(
    run_store: Sealer, hosts: list[SandboxHost]
) -> None:
    cdir = cluster_dir(run_store, CLUSTER)
    before = snapshot(hosts)
    rows = check(run_store, hosts, "--diff")
    master, node = hosts
    for host in hosts:
        row = rows[host.address]
        assert f"/{host.arch}" in row["platform"]
        assert row["rootfs"]["files"] > 0 and row["rootfs"]["bytes"] > 0, row
    assert rows[master.address]["registry"]["files"] > 0
    assert rows[master.address]["registry"]["bytes"] > 0
    assert rows[master.address]["registry"]["action"] == "start"
    assert rows[master.address]["init"] == "pending"
    assert rows[master.address]["cmds"] == "pending"
    assert rows[node.address]["join"] == "pending"
    assert rows[node.address]["registry"] == {"files": 0, "bytes": 0, "action": "none"}
    # --diff never shows the registry's configuration, which holds its HTTP secret
    diffs = json.dumps(rows)
    assert "rootdirectory" not in diffs and "secret" not in diffs, diffs
    assert_unchanged(before, hosts)
    for host in hosts:
        assert host.ssh(f"test -e /var/lib/sealer/data/{CLUSTER}", check=False).returncode == 1
    # the controller keeps the log of the check, and nothing else: no cluster was made
    assert controller_state(cdir) == {}
    assert CLUSTER not in run_store.run("ps", "--output", "json").stdout


def test_check_after_a_run_finds_nothing_to_do(run_store: Sealer, hosts: list[SandboxHost]) -> None:
    run_cluster(run_store, CLUSTER, hosts[:1], hosts[1:], "-u", SUDO_USER)
    cdir = cluster_dir(run_store, CLUSTER)
    state = controller_state(cdir)
    before = snapshot(hosts)
    rows = check(run_store, hosts, "--diff")
    for row in rows.values():
        assert row["rootfs"]["files"] == 0 and row["rootfs"]["bytes"] == 0, row
        assert row["registry"]["files"] == 0 and row["registry"]["action"] == "none", row
        assert "pending" not in (row["init"], row["join"], row["cmds"]), row
    assert rows[hosts[0].address]["init"] == "done" and rows[hosts[0].address]["cmds"] == "done"
    # the registry's HTTP secret: the cluster's own random one, on the registry host and in no log
    secret = (cdir / "registry-http-secret").read_text().strip()
    assert len(secret) == 64 and os.stat(cdir / "registry-http-secret").st_mode & 0o777 == 0o600
    config = hosts[0].ssh(f"cat /var/lib/sealer/data/{CLUSTER}/registry.yml").stdout
    assert f"secret: {secret}\n" in config, config
    logged = subprocess.run(["grep", "-rlF", secret, str(cdir / "runs")], capture_output=True, text=True, check=False)
    assert logged.stdout == "" and secret not in json.dumps(rows), logged.stdout
    assert rows[hosts[1].address]["join"] == "done"
    assert_unchanged(before, hosts)
    assert controller_state(cdir) == state
    # the human-readable report says the same
    text = run_store.run("run", "kubernetes-multi-arch:v1.19.8", "-m", hosts[0].address, "-n", hosts[1].address,
                         "--pk", hosts[0].key, "-u", SUDO_USER, "--cluster", CLUSTER, "--check").stdout  # fmt: skip
    assert "nothing to change" in text, text


def test_verify_finds_by_content_what_a_check_misses_and_run_verify_repairs_it(
    run_store: Sealer, hosts: list[SandboxHost]
) -> None:
    master, node = hosts
    target = f"/var/lib/sealer/data/{CLUSTER}/rootfs/manifests/dashborad.yaml"
    original = node.ssh(f"sha256sum {target}").stdout.split()[0]
    # changed in place: same size, its time put back (rsync's quick check sees nothing)
    node.ssh(f"touch -r {target} /tmp/verify-ref && printf X | dd of={target} bs=1 count=1 conv=notrunc 2>/dev/null"
             f" && touch -r /tmp/verify-ref {target} && rm /tmp/verify-ref")  # fmt: skip
    assert node.ssh(f"sha256sum {target}").stdout.split()[0] != original
    assert check(run_store, hosts)[node.address]["rootfs"]["files"] == 0  # the default compare stays as fast
    state = controller_state(cluster_dir(run_store, CLUSTER))
    before = snapshot(hosts)
    found = run_store.run("verify", "--cluster", CLUSTER, "--output", "json", check=False)
    assert found.returncode == 1, found.stdout + found.stderr
    said = found.stderr.strip().splitlines()[-1]
    assert said.startswith(f"sealer: error: cluster {CLUSTER}: the rootfs differs from ") and said.endswith(
        f" on {node.address} (sealer run --verify repairs it)"
    ), found.stderr
    rows = {row["address"]: row for row in json.loads(found.stdout)["hosts"]}
    assert rows[node.address]["paths"] == ["manifests/dashborad.yaml"] and rows[node.address]["differ"] == 1
    assert rows[master.address]["differ"] == 0 and rows[master.address]["paths"] == []
    assert_unchanged(before, hosts)  # verify changes nothing
    assert controller_state(cluster_dir(run_store, CLUSTER)) == state
    # sealer run --verify repairs it and names the file
    out = json.loads(run_cluster(run_store, CLUSTER, hosts[:1], hosts[1:], "-u", SUDO_USER, "--verify").stdout)
    repaired = {row["address"]: row["paths"] for row in out["verified"]}
    assert repaired == {master.address: [], node.address: ["manifests/dashborad.yaml"]}
    assert node.ssh(f"sha256sum {target}").stdout.split()[0] == original
    again = run_store.run("verify", "--cluster", CLUSTER)
    assert "every host's rootfs is the image's" in again.stderr, again.stderr


def test_join_check_reports_the_new_host_and_changes_nothing(
    run_store: Sealer, hosts: list[SandboxHost], sandbox: Sandbox
) -> None:
    new = sandbox.hosts[4]  # arm64
    state = controller_state(cluster_dir(run_store, CLUSTER))
    before = snapshot([*hosts, new])
    proc = run_store.run("join", "-n", new.address, "--cluster", CLUSTER, "--check", "--output", "json")
    rows = {row["address"]: row for row in json.loads(proc.stdout)["hosts"]}
    assert rows[new.address]["rootfs"]["files"] > 0 and rows[new.address]["join"] == "pending"
    assert rows[hosts[1].address]["rootfs"]["files"] == 0 and rows[hosts[1].address]["join"] == "done"
    assert_unchanged(before, [*hosts, new])
    assert controller_state(cluster_dir(run_store, CLUSTER)) == state


def test_check_reports_exactly_the_file_a_new_image_changes(
    run_store: Sealer, hosts: list[SandboxHost], tmp_path: Path
) -> None:
    manifest = hosts[0].ssh(f"cat /var/lib/sealer/data/{CLUSTER}/rootfs/manifests/dashborad.yaml").stdout
    (tmp_path / "dashborad.yaml").write_text(manifest + "# changed for the check\n")
    (tmp_path / "Kubefile").write_text("FROM kubernetes-multi-arch:v1.19.8\nCOPY dashborad.yaml manifests\n")
    run_store.run("build", "--platform", "linux/amd64,linux/arm64", "-t", CHANGED_IMAGE, str(tmp_path))
    before = snapshot(hosts)
    proc = run_cluster(run_store, CLUSTER, hosts[:1], hosts[1:], "-u", SUDO_USER, "--check", "--diff",
                       image=CHANGED_IMAGE)  # fmt: skip
    rows = {row["address"]: row for row in json.loads(proc.stdout)["hosts"]}
    size = len((tmp_path / "dashborad.yaml").read_bytes())
    for row in rows.values():
        assert row["rootfs"]["files"] == 1 and row["rootfs"]["bytes"] == size, row
        assert row["rootfs"]["paths"] == ["manifests/dashborad.yaml"], row
        assert row["registry"]["files"] == 0, row
    assert rows[hosts[0].address]["init"] == "done" and rows[hosts[1].address]["join"] == "done"
    # the new image's CMDs would run, and --diff shows the record a run would write of them
    assert rows[hosts[0].address]["cmds"] == "pending"
    diffs = "".join(d["diff"] for d in rows[hosts[0].address]["diffs"])
    assert "+- kubectl apply -f manifests/dashborad.yaml" in diffs, diffs
    assert_unchanged(before, hosts)
    # the same from ansible-playbook --check on the collection's playbook, with the inventory
    # sealer wrote and the new image's platforms mounted where it says: its hosts' typed results
    # give the same report
    reports = ansible_playbook_check(run_store, CHANGED_IMAGE, tmp_path)
    assert {a: r["rootfs"]["paths"] for a, r in reports.items()} == {
        h.address: ["manifests/dashborad.yaml"] for h in hosts
    }
    assert_unchanged(before, hosts)


def ansible_playbook_check(run_store: Sealer, image: str, workdir: Path) -> dict[str, Any]:
    cdir = cluster_dir(run_store, CLUSTER)
    inventory = yaml.safe_load((cdir / "inventory.yaml").read_text())
    store = Store.open(run_store.root)
    found = get_image(store, Reference.parse(image))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path(workdir)), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json"}  # fmt: skip
    with contextlib.ExitStack() as stack:
        for spec in inventory["all"]["children"].values():
            if "sealer_rootfs_source" in (spec.get("vars") or {}):
                platform = Platform.parse(inventory["all"]["hosts"][next(iter(spec["hosts"]))]["sealer_platform"])
                target = Path(spec["vars"]["sealer_rootfs_source"])
                stack.enter_context(mounted_rootfs(store, found.for_platform(platform), target))
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(cdir / "inventory.yaml"), "--check",
             "sealer.cluster.run"], capture_output=True, text=True, env=env, check=False, cwd=ROOT,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    typed = Reports()
    for play in json.loads(proc.stdout)["plays"]:
        for task in play["tasks"]:
            for address, res in task["hosts"].items():
                report = host_report(address, res)
                if report is not None:
                    typed.add(report)
    groups = inventory["all"]["children"]
    topology = Topology(next(iter(groups["master"]["hosts"])), next(iter(groups["registry"]["hosts"])),
                        frozenset(inventory["all"]["hosts"]))  # fmt: skip
    return {a: host_check(a, "", typed, topology, set()).to_json() for a in inventory["all"]["hosts"]}
