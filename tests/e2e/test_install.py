"""sealer as users install it: the wheel in a fresh virtual environment, and the collection
built with ansible-galaxy and installed offline, each run against the sandbox from elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir, standin_log
from tests.helpers import ROOT, Sealer

IMAGE = "kubernetes-multi-arch:v1.19.8"
ELF_MACHINE = {"amd64": "3e00", "arm64": "b700"}
BIN = Path(sys.executable).parent


def elf_machine(host: SandboxHost, path: str) -> str:
    code = f"print(open('{path}', 'rb').read(20)[18:20].hex())"
    return host.ssh(f'python3 -c "{code}"').stdout.strip()


@pytest.fixture(scope="module")
def wheel_sealer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sealer`` from the wheel, in a new virtual environment that knows nothing of the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(ROOT)],
                   check=True, capture_output=True, cwd=work)  # fmt: skip
    wheel = next((work / "dist").glob("sealer-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    subprocess.run([str(work / "venv" / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, cwd=work)  # fmt: skip
    return work / "venv" / "bin" / "sealer"


@pytest.fixture(scope="module")
def wheel_cluster(wheel_sealer: Path, run_store: Sealer, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[list[SandboxHost], dict[str, object]]]:  # fmt: skip
    """An amd64 master and an arm64 node run by the installed wheel from a directory of its own."""
    hosts = [sandbox.hosts[2], sandbox.hosts[3]]
    cwd = tmp_path_factory.mktemp("elsewhere")

    def sealer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(wheel_sealer), *args], capture_output=True, text=True, cwd=cwd,
                              env=run_store.env(), check=False)  # fmt: skip

    proc = sealer("run", IMAGE, "-m", hosts[0].address, "-n", hosts[1].address, "--pk", sandbox.key,
                  "--cluster", "wheel", "--output", "json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    yield hosts, json.loads(proc.stdout)
    done = sealer("delete", "--all", "--cluster", "wheel")
    assert done.returncode == 0, done.stderr


def test_the_wheel_is_not_the_checkout(wheel_sealer: Path) -> None:
    python = wheel_sealer.parent / "python"
    out = subprocess.run([str(python), "-c", "import sealer.cluster.collection as c; print(c.content_root())"],
                         capture_output=True, text=True, check=True, cwd="/").stdout.strip()  # fmt: skip
    content = Path(out)
    assert not content.is_relative_to(ROOT), content
    assert (content / "playbooks" / "run.yml").is_file()
    assert (content / "roles" / "sealer_rootfs" / "tasks" / "main.yml").is_file()
    # the controller-side steps of the playbooks run without the sealer command
    assert (content / "plugins" / "action" / "prepare.py").is_file()
    assert (content / "plugins" / "modules" / "finish.py").is_file()


def test_the_installed_wheel_runs_a_mixed_cluster(wheel_cluster: tuple[list[SandboxHost], dict[str, object]]) -> None:
    hosts, result = wheel_cluster
    assert [h["address"] for h in result["hosts"]] == [h.address for h in hosts]  # type: ignore[attr-defined]
    for host in hosts:
        assert elf_machine(host, "/var/lib/sealer/data/wheel/rootfs/bin/helm") == ELF_MACHINE[host.arch]
    assert len([c for _t, c in standin_log(hosts[0], "wheel") if " init --config" in c]) == 1
    assert len([c for _t, c in standin_log(hosts[1], "wheel") if " join " in c]) == 1


@contextlib.contextmanager
def rootfs_mounted(store: Sealer, cluster: str) -> Iterator[None]:
    """What sealer run does on the controller before the playbooks: each platform's rootfs mounted
    where the inventory's sealer_rootfs_source says."""
    from sealer.oci.platform import Platform
    from sealer.oci.reference import Reference
    from sealer.store.image import get_image
    from sealer.store.layout import Store
    from sealer.store.mount import mounted_rootfs

    inventory = yaml.safe_load((cluster_dir(store, cluster) / "inventory.yaml").read_text())
    os.environ["SEALER_ROOT"] = str(store.root)
    try:
        st = Store.open()
        image = get_image(st, Reference.parse(inventory["all"]["vars"]["sealer_image"]))
        with contextlib.ExitStack() as stack:
            for group in inventory["all"]["children"].values():
                source = (group.get("vars") or {}).get("sealer_rootfs_source")
                if source:
                    platform = Platform.parse(Path(source).name.replace("_", "/"))
                    stack.enter_context(mounted_rootfs(st, image.for_platform(platform), Path(source)))
            yield
    finally:
        del os.environ["SEALER_ROOT"]


def playbook(collections: Path, inventory: Path, play: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(play)],
                          capture_output=True, text=True, env=env, cwd=play.parent, check=False)  # fmt: skip


def test_a_users_playbook_runs_the_installed_collection(
    wheel_cluster: tuple[list[SandboxHost], dict[str, object]], collections: Path, run_store: Sealer, tmp_path: Path
) -> None:
    hosts, _ = wheel_cluster
    inventory = cluster_dir(run_store, "wheel") / "inventory.yaml"
    play = tmp_path / "site.yml"
    play.write_text(
        "- name: Check the hosts with sealer's preflight role\n  hosts: all\n  gather_facts: false\n"
        "  roles: [sealer.cluster.sealer_preflight]\n"
        "- name: Deliver the cluster\n  ansible.builtin.import_playbook: sealer.cluster.run\n"
    )
    # a file of the image gone from the node: the collection's rootfs role sends it back
    helm = "/var/lib/sealer/data/wheel/rootfs/bin/helm"
    hosts[1].ssh(f"rm {helm}")
    with rootfs_mounted(run_store, "wheel"):
        proc = playbook(collections, inventory, play)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "sealer.cluster.sealer_rootfs" in proc.stdout
    assert elf_machine(hosts[1], helm) == ELF_MACHINE[hosts[1].arch]
    # Kubernetes was initialised and joined once: the collection's roles kept sealer's markers
    assert len([c for _t, c in standin_log(hosts[0], "wheel") if " init --config" in c]) == 1
    assert len([c for _t, c in standin_log(hosts[1], "wheel") if " join " in c]) == 1
