"""Every role's argument spec as Ansible reads it: ansible-doc shows each role of the collection
built and collections offline, and the spec checks a role's inputs at its start, taking what
sealer's inventory and run give the roles and refusing a value of the wrong type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from sealer.cluster.clusterfile import Cluster, Host, SSHConfig
from sealer.cluster.collection import collections_path
from sealer.cluster.hosts import HostFacts
from sealer.cluster.inventory import build_inventory
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from tests.unit.test_sample_inventory import ROLES, options

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ansible_doc_shows_every_role_with_its_options(collections: Path) -> None:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    names = [f"sealer.cluster.{role}" for role in ROLES]
    proc = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", "--json", *names],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == sorted(names)
    for role in ROLES:
        shown = docs[f"sealer.cluster.{role}"]["entry_points"]["main"]
        assert shown["short_description"]
        assert set(shown["options"]) == set(options(role)), role
        for name, spec in options(role).items():
            assert shown["options"][name]["type"] == spec["type"]
            assert shown["options"][name].get("default") == spec.get("default"), f"{role}: {name}"
    # and the text a reader sees
    text = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", "sealer.cluster.sealer_rootfs"],
                          env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "ENTRY POINT: main" in text and "sealer_rootfs_io_timeout" in text and "default: 60" in text


def sealer_inventory(tmp_path: Path) -> Path:
    """The inventory sealer run writes for two hosts (one logging in through sudo with a password),
    with the variables its preparing of the cluster adds, in the types it writes them."""
    ssh = SSHConfig(user="ops", pk="/keys/id")
    cluster = Cluster("prod", Reference.parse("img:1"), ssh,
                      [Host("10.0.0.1", "master", ssh), Host("10.0.0.2", "node", ssh)], env={"A": "1"})  # fmt: skip
    amd, arm = Platform.parse("linux/amd64"), Platform.parse("linux/arm64/v8")
    facts = {"10.0.0.1": HostFacts("10.0.0.1", amd, "m1"), "10.0.0.2": HostFacts("10.0.0.2", arm, "n1", "password")}
    inventory = build_inventory(cluster, facts, tmp_path / "prod", {amd: "a" * 64, arm: "b" * 64})
    prepared: dict[str, Any] = {  # as sealer/cluster/prepare.py returns them
        "sealer_registry_domain": "sea.hub", "sealer_registry_port": 5000,
        "sealer_registry_ca": "/c/tls/ca.crt", "sealer_registry_tls_cert": "/c/r.crt", "sealer_registry_tls_key": "",
        "sealer_registry_source": "/c/registry", "sealer_registry_htpasswd": "/c/htpasswd",
        "sealer_runtime_registries": ["docker.io", "[::1]:5001"], "sealer_runtime_credentials": "/c/registry-pull",
        "sealer_kubernetes_config": "/c/kubeadm.yml", "sealer_app_commands": ["kubectl apply -f x"],
        "sealer_app_version": "0123456789abcdef", "sealer_env": {"A": "1"},
    }  # fmt: skip
    inventory["all"]["vars"].update(prepared)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def playbook(tmp_path: Path, inventory: Path, play: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "play.yml").write_text(play)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json"}  # fmt: skip
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "-c", "local", "play.yml", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=False)  # fmt: skip


def test_every_spec_takes_what_sealer_writes_into_the_inventory(tmp_path: Path) -> None:
    # each role's spec checked on every host as the role's start checks it (the same action),
    # with the variables of sealer's inventory and of a run (sudo's helper, the swarm's torrents)
    specs = {role: str(ROOT / "roles" / role / "meta" / "argument_specs.yml") for role in ROLES}
    (tmp_path / "specs.json").write_text(json.dumps({"specs": specs}))
    play = (
        "- hosts: all\n  gather_facts: false\n  vars_files: [specs.json]\n  tasks:\n"
        "    - ansible.builtin.validate_argument_spec:\n"
        "        argument_spec: \"{{ (lookup('ansible.builtin.file', item.value) | from_yaml)"
        '.argument_specs.main.options }}"\n'
        '      loop: "{{ specs | dict2items }}"\n'
    )
    run_vars = json.dumps({"sealer_become_rsh": "bash /x/become-rsh /usr/bin/python3 /run/s",
                           "sealer_rootfs_swarm": {"10.0.0.2": "/c/swarm/linux_arm64.torrent"}})  # fmt: skip
    proc = playbook(tmp_path, sealer_inventory(tmp_path), play, "-e", run_vars, "--check")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    results = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]
    assert sorted(results) == ["10.0.0.1", "10.0.0.2"]
    for res in results.values():
        assert [r["item"]["key"] for r in res["results"]] == ROLES
        assert all(r["msg"] == "The arg spec validation passed" for r in res["results"])


def test_a_role_refuses_a_value_of_the_wrong_type_at_its_start_even_in_check_mode(tmp_path: Path) -> None:
    play = "- hosts: all\n  gather_facts: false\n  roles: [sealer.cluster.sealer_app]\n"
    proc = playbook(tmp_path, sealer_inventory(tmp_path), play, "-e", '{"sealer_registry_port": "five"}', "--check")
    assert proc.returncode != 0
    out = json.loads(proc.stdout)
    first = out["plays"][0]["tasks"][0]
    # the shared role's spec, which every other role depends on, is checked first
    assert first["task"]["name"].startswith("sealer.cluster.sealer : Validating arguments against arg spec 'main'")
    for res in first["hosts"].values():
        assert res["failed"] and "sealer_registry_port" in res["msg"], res["msg"]
    assert len(out["plays"][0]["tasks"]) == 1  # nothing after it ran


def test_ansible_doc_shows_the_name_tests_the_roles_use(collections: Path) -> None:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    names = ["sealer.cluster.dns_label", "sealer.cluster.registry_name"]
    proc = subprocess.run([str(BIN / "ansible-doc"), "-t", "test", "--json", *names],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == names
    for name in names:
        assert docs[name]["doc"]["short_description"] and docs[name]["return"]["_value"]["type"] == "bool"
