"""What a swarm leaves on a host when sealer is interrupted or killed (aria2c seeding from
``<data dir>/swarm``) goes: on an interrupt sealer runs the rootfs role's swarm-stop tasks on its
own (sealer/cluster/deploy.py), and a later run's rootfs delivery (its receiving shell,
receive.sh.j2) removes what a killed run left, instead of switching to rsync and leaving it. Here
on this machine, with a sleeper that carries aria2c's arguments standing in for aria2c."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sealer.cluster.collection import collections_path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "roles" / "sealer_rootfs" / "templates"


def seeder(swarm: Path, own: bool = True) -> subprocess.Popen[bytes]:
    """A process whose arguments are those of this swarm's aria2c (``--dir=SWARM/data``), or not."""
    (swarm / "data").mkdir(parents=True, exist_ok=True)
    marker = f"--dir={swarm}/data" if own else f"--dir={swarm}/other"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    (swarm / "aria2c.pid").write_text(f"{proc.pid}\n")
    return proc


def ended(proc: subprocess.Popen[bytes]) -> bool:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return True


def play(tmp_path: Path, tasks: str, root: Path) -> subprocess.CompletedProcess[str]:
    variables = {
        "sealer_cluster_name": "c1", "sealer_data_root": str(root), "sealer_rootfs_source": "/nonexistent",
        "sealer_rootfs_image_id": "sha256:x", "sealer_stop_stale_receivers": "true", "sealer_rsync_address": "h",
    }  # fmt: skip
    lines = "".join(f"    {k}: {v!r}\n" for k, v in variables.items())
    (tmp_path / "play.yml").write_text(f"- hosts: localhost\n  gather_facts: false\n  vars:\n{lines}  tasks:\n{tasks}")
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "ANSIBLE_NOCOLOR": "1"}
    args = [str(Path(sys.executable).with_name("ansible-playbook")), "-c", "local", str(tmp_path / "play.yml")]
    return subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=120)


def receive_script(tmp_path: Path, root: Path, swarm_hosts: str) -> Path:
    """The rootfs delivery's receiving shell as the role renders it for this host."""
    out = tmp_path / "receive.sh"
    proc = play(tmp_path, (
        "    - ansible.builtin.copy:\n"
        f"        dest: {out}\n"
        f"        content: \"{{{{ lookup('ansible.builtin.template', '{TEMPLATES}/receive.sh.j2') }}}}\"\n"
        "      vars:\n"
        f"        sealer_rootfs_swarm: {swarm_hosts}\n"
        f"        sealer_rootfs_dest: {root}/c1/rootfs\n"
        f"        sealer_rootfs_stamp: {root}/c1/rootfs.initialized\n"
        f"        sealer_rootfs_swarm_dir: {root}/c1/swarm\n"
        "        sealer_rootfs_init_script: scripts/init.sh\n"
    ), root)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("own", [True, False])
def test_a_later_delivery_removes_what_a_killed_swarm_left(tmp_path: Path, own: bool) -> None:
    root = tmp_path / "sealer"
    swarm = root / "c1" / "swarm"
    proc = seeder(swarm, own)
    try:
        script = receive_script(tmp_path, root, "{}")
        # rsync is not given any arguments here: it fails, after the shell did what comes before
        done = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False)
        assert f"sealer-event swarm-removed {swarm}" in done.stderr, done.stderr
        assert not swarm.exists()
        # this swarm's aria2c is stopped; a process that only reuses its recorded pid is not
        assert ended(proc) if own else proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_host_of_this_runs_swarm_keeps_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "sealer"
    swarm = root / "c1" / "swarm"
    swarm.mkdir(parents=True)
    script = receive_script(tmp_path, root, "{'localhost': '/x.torrent'}")
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False)
    assert "swarm-removed" not in done.stderr and swarm.is_dir()


def test_the_swarm_stop_tasks_run_alone_stop_aria2c_and_remove_the_directory(tmp_path: Path) -> None:
    # what sealer runs on the swarm's hosts after SIGINT or SIGTERM (deploy.SWARM_STOP_PLAY)
    root = tmp_path / "sealer"
    swarm = root / "c1" / "swarm"
    proc = seeder(swarm)
    try:
        started = time.monotonic()
        done = play(tmp_path, (
            "    - ansible.builtin.include_role: {name: sealer.cluster.sealer_rootfs, tasks_from: swarm-stop}\n"
        ), root)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert ended(proc) and not swarm.exists()
        assert time.monotonic() - started < 110  # not the sleeper's own end
    finally:
        proc.kill()
        proc.wait()
