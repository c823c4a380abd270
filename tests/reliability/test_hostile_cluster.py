"""Hostile use of the cluster commands (issue 30): secrets in the process, oversized input,
messages for wrong combinations, lookups in inventories, paths an inventory points elsewhere.

Every case runs the real ``sealer`` on the controller and needs no host: each is refused, or
observed, before sealer reaches one.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import SEALER, Sealer, free_port
from tests.reliability.conftest import SMALL, make_small_context


def test_passwords_are_not_in_proc_environ_of_a_running_sealer(tmp_path: Path) -> None:
    """sealer blocks opening a FIFO as its Clusterfile; meanwhile its /proc/PID/environ is read."""
    fifo = tmp_path / "Clusterfile"
    os.mkfifo(fifo)
    canaries = {"SEALER_BECOME_PASSWORD": "become-canary-7f3a", "SEALER_SSH_PASSWORD": "ssh-canary-91c2"}
    env = {**Sealer(tmp_path / "store").env(), **canaries}
    proc = subprocess.Popen([*SEALER, "run", "-f", str(fifo)], env=env, stdout=subprocess.PIPE,
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
        os.write(fd, b"apiVersion: nope\n")
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
