"""sealer run -i: an operator's inventory (kubespray's group names, host names with
ansible_host, group_vars beside it) drives the cluster, and its variables reach the roles."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.e2e.conftest import SUDO_USER, Sandbox, cluster_dir
from tests.e2e.test_run_password import SUDO_ASKS, SUDO_NOPASSWD
from tests.helpers import SEALER, Sealer

IMAGE = "kubernetes-multi-arch:v1.19.8"


def test_an_operators_inventory_runs_a_cluster_and_its_variables_reach_the_roles(
    run_store: Sealer, sandbox: Sandbox, tmp_path: Path
) -> None:
    master, node = sandbox.hosts[2], sandbox.hosts[4]  # amd64, arm64
    inv = tmp_path / "mycluster"
    (inv / "group_vars").mkdir(parents=True)
    # values from lookups (Ansible's unsafe text) are taken as Ansible resolves them
    (inv / "hosts.yaml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_ssh_private_key_file": sandbox.key, "ansible_user": "{{ lookup('pipe', 'echo root') }}"},
        "children": {
            "kube_control_plane": {"hosts": {"cp-1": {"ansible_host": master.address}}},
            "kube_node": {"hosts": {"cp-1": None, "worker-1": {"ansible_host": node.address,
                                                               "team": "{{ lookup('pipe', 'echo edge') }}"}}},
        },
    }}))  # fmt: skip
    group_vars = inv / "group_vars" / "all.yml"
    # the operator's own setting reaches the preflight role: no host has that much space
    group_vars.write_text("sealer_preflight_min_free_mib: 99999999\n")
    args = ["run", IMAGE, "-i", str(inv / "hosts.yaml"), "--cluster", "inv", "--output", "json"]
    refused = run_store.run(*args, check=False)
    assert refused.returncode != 0
    assert f"{master.address} has less than 99999999 MiB free" in refused.stderr, refused.stderr
    assert node.ssh("test -e /var/lib/sealer/data/inv", check=False).returncode == 1
    group_vars.write_text("sealer_preflight_min_free_mib: 1\n")
    try:
        result = json.loads(run_store.run(*args).stdout)
        assert [(h["address"], h["role"]) for h in result["hosts"]] == [
            (master.address, "master"),
            (node.address, "node"),
        ]
        helm = "/var/lib/sealer/data/inv/rootfs/bin/helm"
        assert f'GoArch:"{node.arch}"' in node.ssh(f"{helm} version").stdout
        inventory = yaml.safe_load((cluster_dir(run_store, "inv") / "inventory.yaml").read_text())
        assert inventory["all"]["hosts"][node.address]["team"] == "edge"
        assert inventory["all"]["hosts"][node.address]["sealer_preflight_min_free_mib"] == 1
    finally:
        done = run_store.run("delete", "--all", "--cluster", "inv", check=False)
    assert done.returncode == 0, done.stderr
    assert node.ssh("test -e /var/lib/sealer/data/inv", check=False).returncode == 1


def test_an_inventorys_become_password_is_used_and_never_written(
    run_store: Sealer, sandbox: Sandbox, tmp_path: Path
) -> None:
    """sudo asks the login user for a password; the inventory gives it (ansible_become_password),
    as an operator's inventory does for Ansible: sealer run -i uses it and writes it nowhere."""
    master = sandbox.hosts[2]
    root = master.as_user("root")
    password = Path(sandbox.password_file).read_text().strip()
    inv = tmp_path / "sudo"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yaml").write_text(yaml.safe_dump({"all": {"children": {"master": {"hosts": {
        "m-1": {"ansible_host": master.address, "ansible_user": SUDO_USER,
                "ansible_ssh_private_key_file": sandbox.key}}}}}}))  # fmt: skip
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump({"ansible_become_password": password}))
    root.ssh("cat > /etc/sudoers.d/sealer-sandbox", input=SUDO_ASKS)
    try:
        run_store.run("run", IMAGE, "-i", str(inv / "hosts.yaml"), "--cluster", "invsudo")
        assert f'GoArch:"{master.arch}"' in root.ssh("/var/lib/sealer/data/invsudo/rootfs/bin/helm version").stdout
        assert root.ssh("find /var/lib/sealer ! -user root | head -3").stdout == ""
        grep = subprocess.run(["grep", "-rlF", password, str(run_store.root)], capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert grep.stdout == "", grep.stdout
        assert root.ssh("grep -rlF -f - /var/lib/sealer /var/log /tmp /home", check=False, input=password).stdout == ""
    finally:
        env = {**run_store.env(), "SEALER_BECOME_PASSWORD": password}
        done = subprocess.run([*SEALER, "delete", "--all", "--cluster", "invsudo"], env=env, capture_output=True,
                              text=True, check=False)  # fmt: skip
        root.ssh("cat > /etc/sudoers.d/sealer-sandbox", input=SUDO_NOPASSWD)
    assert done.returncode == 0, done.stderr
    assert root.ssh("test -e /var/lib/sealer/data/invsudo", check=False).returncode == 1
