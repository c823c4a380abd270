"""Hostile use of the cluster commands (issue 30): secrets in the process, oversized input,
messages for wrong combinations, lookups in inventories, paths an inventory points elsewhere.

Every case runs the real ``sealer`` on the controller and needs no host: each is refused, or
observed, before sealer reaches one.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import SEALER, Sealer, free_port
from tests.reliability.conftest import SMALL, make_small_context


def test_passwords_are_not_in_proc_environ_of_a_running_sealer(tmp_path: Path) -> None:
    """sealer blocks opening a FIFO as the archive to load; meanwhile its /proc/PID/environ is read."""
    fifo = tmp_path / "archive.tar"
    os.mkfifo(fifo)
    canaries = {"SEALER_BECOME_PASSWORD": "become-canary-7f3a", "SEALER_SSH_PASSWORD": "ssh-canary-91c2"}
    env = {**Sealer(tmp_path / "store").env(), **canaries}
    proc = subprocess.Popen([*SEALER, "load", "-i", str(fifo)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # a FIFO opens for writing without blocking only once a reader has it open
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as err:
                assert err.errno == errno.ENXIO
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        os.write(fd, b"not a tar\n")
        os.close(fd)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, err
    assert b"SEALER_ROOT=" in environ  # the block was read, and it is sealer's
    for name, value in canaries.items():
        assert value.encode() not in environ
        assert name.encode() not in environ


# ---- inventories with lookups, and the state a failed first run leaves -------------------


@pytest.fixture(scope="module")
def own_store(tmp_path_factory: pytest.TempPathFactory) -> Sealer:
    """A store of this module's own (runs make clusters in it) holding SMALL for amd64, and a key."""
    root = tmp_path_factory.mktemp("hostile-cluster")
    s = Sealer(root / "store")
    s.run("build", "--platform", "linux/amd64", "-t", SMALL, str(make_small_context(root)))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "key")], check=True)
    return s


def key_of(store: Sealer) -> str:
    return str(store.root.parent / "key")


def test_a_first_run_that_fails_before_any_host_changes_leaves_no_cluster_directory(own_store: Sealer) -> None:
    proc = own_store.run("run", SMALL, "-m", "127.0.0.1", "--port", str(free_port()), "--pk", key_of(own_store),
                         "--cluster", "early", check=False)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (own_store.root / "clusters" / "early").exists()
    assert "early" not in own_store.run("ps").stdout


def test_an_incomplete_cluster_state_can_be_deleted(own_store: Sealer) -> None:
    clusters = own_store.root / "clusters"
    no_inventory = clusters / "halfway"
    no_inventory.mkdir(parents=True)
    (no_inventory / "Clusterfile").write_text(
        f"apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata:\n  name: halfway\nspec:\n  image: {SMALL}\n"
        "  hosts:\n  - ips: [127.0.0.1]\n    roles: [master]\n"
    )
    no_clusterfile = clusters / "bare"
    (no_clusterfile / "runs").mkdir(parents=True)
    for name in ("halfway", "bare"):
        proc = own_store.run("delete", "--all", "--cluster", name, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "no host was reset" in proc.stderr
        assert not (clusters / name).exists()


# ---- oversized input ---------------------------------------------------------------------

REFUSED_WITHIN = 30  # seconds; an unbounded reader runs minutes and grows to gigabytes
MEMORY_CAP = 1536 << 20  # bytes of address space: sealer refusing needs a fraction of it


def bomb(levels: int = 9) -> str:
    """A YAML mapping of lists whose last one, aliases expanded, holds 10**levels strings."""
    lines = ['  l0: &l0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def bounded(sealer: Sealer, *args: str) -> subprocess.CompletedProcess[str]:
    """sealer with its memory capped and a deadline: a reader that expands its input fails the case."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    started = time.monotonic()
    proc = subprocess.run([*SEALER, *args], env=sealer.env(), capture_output=True, text=True, check=False,
                          timeout=REFUSED_WITHIN, preexec_fn=cap)  # fmt: skip
    assert time.monotonic() - started < REFUSED_WITHIN
    return proc


def assert_one_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]


def test_an_alias_bomb_inventory_is_refused_in_one_line(own_store: Sealer, tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text("all:\n  vars:\n  " + bomb().replace("\n  ", "\n    ") + "  children:\n    master:\n"
                    "      hosts:\n        127.0.0.1:\n")  # fmt: skip
    assert_one_line(bounded(own_store, "run", SMALL, "-i", str(path)), str(path), "aliases expanded")


def test_an_alias_bomb_in_group_vars_is_refused_in_one_line(own_store: Sealer, tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("all_of_it:\n" + bomb())
    path = tmp_path / "hosts.ini"
    path.write_text("[master]\n127.0.0.1\n")
    assert_one_line(bounded(own_store, "run", SMALL, "-i", str(path)), "group_vars/all.yml", "aliases expanded")


def test_an_alias_bomb_clusterfile_is_refused_in_one_line(own_store: Sealer, tmp_path: Path) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(f"apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata:\n  name: boom\n  labels:\n{bomb()}"
                    f"spec:\n  image: {SMALL}\n  hosts:\n  - ips: [127.0.0.1]\n    roles: [master]\n")  # fmt: skip
    assert_one_line(bounded(own_store, "run", "-f", str(path)), str(path), "aliases expanded")


def test_a_self_referring_alias_is_refused_in_one_line(own_store: Sealer, tmp_path: Path) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(f"apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata:\n  name: loop\n  labels: &me {{a: *me}}\n"
                    f"spec:\n  image: {SMALL}\n  hosts:\n  - ips: [127.0.0.1]\n    roles: [master]\n")  # fmt: skip
    assert_one_line(bounded(own_store, "run", "-f", str(path)), str(path), "refers to a node that holds it")


def test_a_huge_one_line_clusterfile_is_refused_in_one_line(own_store: Sealer, tmp_path: Path) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(
        f"apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata: {{name: big, labels: {{x: '{'y' * (64 << 20)}'}}}}\n"
    )
    assert_one_line(bounded(own_store, "run", "-f", str(path)), str(path), "larger than 4194304 bytes")


def test_a_huge_image_list_is_refused_in_one_line(own_store: Sealer, tmp_path: Path) -> None:
    path = tmp_path / "images.txt"
    path.write_text("busybox:1\n" * (1 << 20))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Kubefile").write_text("FROM scratch\nCMD echo\n")
    proc = bounded(own_store, "build", "--platform", "linux/amd64", "-t", "huge:1", "--image-list", str(path), str(ctx))
    assert_one_line(proc, str(path), "larger than 4194304 bytes")


def test_an_alias_bomb_config_is_refused_in_one_line(own_store: Sealer) -> None:
    config = own_store.root / "config.yaml"
    config.write_text("registryMirrors: {}\nlabels:\n" + bomb())
    try:
        assert_one_line(bounded(own_store, "pull", "127.0.0.1:9/none:1"), str(config), "aliases expanded")
    finally:
        config.unlink()


# ---- messages ----------------------------------------------------------------------------


def write_cluster(store: Sealer, name: str) -> None:
    """A cluster's state as a run leaves it (master 192.0.2.1, node 192.0.2.2), without hosts."""
    cdir = store.root / "clusters" / name
    cdir.mkdir(parents=True)
    (cdir / "Clusterfile").write_text(
        f"apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n  image: {SMALL}\n"
        "  ssh: {pk: /nonexistent/key}\n  hosts:\n  - ips: [192.0.2.1]\n    roles: [master]\n"
        "  - ips: [192.0.2.2]\n    roles: [node]\n"
    )
    hosts = {"192.0.2.1": {"sealer_role": "master"}, "192.0.2.2": {"sealer_role": "node"}}
    (cdir / "inventory.yaml").write_text(json.dumps({"all": {"vars": {}, "hosts": hosts, "children": {}}}))


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--pk", "/some/key"], {}, "--pk with -f"),
        (["-u", "ops", "--port", "2222"], {}, "-u, --port with -f"),
        ([], {"SEALER_SSH_PASSWORD": "pw"}, "$SEALER_SSH_PASSWORD with -f"),
    ],
)
def test_ssh_flags_with_a_clusterfile_are_refused(
    own_store: Sealer, tmp_path: Path, args: list[str], env: dict[str, str], said: str
) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(f"apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata: {{name: f}}\nspec:\n  image: {SMALL}\n"
                    "  hosts: [{ips: [192.0.2.9], roles: [master]}]\n")  # fmt: skip
    proc = subprocess.run([*SEALER, "run", "-f", str(path), *args], env={**own_store.env(), **env},
                          capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"sealer: error: {said}: the Clusterfile says how to log in (spec.ssh, or a host group's ssh); set it there"
    ]


def test_join_of_a_member_and_delete_under_the_wrong_role_are_refused(own_store: Sealer) -> None:
    write_cluster(own_store, "roles")
    cases = [
        (["join", "-n", "192.0.2.2"], "192.0.2.2 is already a node of cluster roles"),
        (["join", "-m", "192.0.2.3", "-n", "192.0.2.1"], "192.0.2.1 is already a master of cluster roles"),
        (
            ["delete", "-m", "192.0.2.2"],
            "192.0.2.2 is a node of cluster roles, not a master (sealer delete -n 192.0.2.2)",
        ),
        (
            ["delete", "-n", "192.0.2.1"],
            "192.0.2.1 is a master of cluster roles, not a node (sealer delete -m 192.0.2.1)",
        ),
    ]
    for args, said in cases:
        proc = own_store.run(*args, "--cluster", "roles", check=False)
        assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [f"sealer: error: {said}"], proc.stderr
    assert "192.0.2.2" in (own_store.root / "clusters" / "roles" / "Clusterfile").read_text()


def test_ps_of_a_cluster_that_is_not_there_names_it(own_store: Sealer) -> None:
    proc = own_store.run("ps", "--cluster", "nosuch", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("sealer: error: no cluster named nosuch (clusters: ")
    assert proc.stdout == ""


def test_join_help_offers_no_flag_join_lacks() -> None:
    proc = subprocess.run([*SEALER, "join", "--help"], capture_output=True, text=True, check=True)
    assert "-u" not in proc.stdout.replace("--", "")


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("bad.yaml", "all:\n  children:\n    master:\n      hosts: [oops\n", "bad.yaml:5: not valid YAML"),
        ("bad.ini", "[master\n192.0.2.1\n", "bad.ini: not an Ansible inventory: "),
        ("list.yaml", "all:\n  hosts:\n    - a\n", 'Invalid "hosts" entry for "all" group, requires a dictionary'),
    ],
)  # fmt: skip
def test_a_malformed_inventory_prints_only_sealers_line(
    own_store: Sealer, tmp_path: Path, name: str, text: str, said: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    proc = own_store.run("run", SMALL, "-i", str(path), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sealer: error: {path}") and said in lines[0], proc.stderr
    assert "WARNING" not in proc.stderr and "Ansible" + "Sequence" not in proc.stderr


# ---- paths an inventory points elsewhere -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("sealer_data_dir", "/etc"), ("sealer_rootfs_dest", "/etc"), ("sealer_data_root", "/"),
     ("sealer_reset_data_dir", "/var/lib/sealer/data/paths/../other")],
)  # fmt: skip
def test_an_inventory_path_outside_the_clusters_directory_is_refused(
    own_store: Sealer, tmp_path: Path, name: str, value: str
) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(f"all:\n  vars:\n    {name}: {value}\n  children:\n    master:\n      hosts:\n        192.0.2.1:\n")
    proc = own_store.run("run", SMALL, "-i", str(path), "--cluster", "paths", check=False)
    assert proc.returncode == 1
    said = (
        "must be an absolute, normalized path with a directory named for sealer in it (like /var/lib/sealer/data)"
        if name == "sealer_data_root"
        else "is worked out by the collection's roles from sealer_data_root and the cluster's name, not read from "
        "an inventory: set sealer_data_root to move the cluster's data"
    )
    assert proc.stderr.strip().splitlines() == [f"sealer: error: {path}: host 192.0.2.1: {name} {value!r} {said}"]
    assert not (own_store.root / "clusters" / "paths").exists()
