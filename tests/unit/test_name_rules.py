"""The name rules are written twice, in the sealer package and in the collection's test plugin
(which ships without the package): both give the same answer for every name of one table, and
the plugin gives it through Ansible's own Jinja, as the roles call it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sealer.cluster.collection import collections_path
from sealer.errors import InvalidNameError
from sealer.names import check_name, is_dns_label, is_registry_name
from tests.unit.name_table import DNS_LABELS, REGISTRY_NAMES

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "test" / "names.py"


def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sealer_cluster_test_names", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("name", "valid"), DNS_LABELS)
def test_a_dns_label_by_both_rules(name: str, valid: bool) -> None:
    assert is_dns_label(name) is valid
    assert plugin().TestModule().tests()["dns_label"](name) is valid
    if valid:
        assert check_name(name, "cluster") == name
    else:
        with pytest.raises(InvalidNameError, match=r"^invalid cluster name"):
            check_name(name, "cluster")


@pytest.mark.parametrize(("name", "valid"), REGISTRY_NAMES)
def test_a_registry_name_by_both_rules(name: str, valid: bool) -> None:
    assert is_registry_name(name) is valid
    assert plugin().TestModule().tests()["registry_name"](name) is valid


def test_the_plugin_takes_no_other_type_for_a_name() -> None:
    tests = plugin().TestModule().tests()
    for value in (None, 1, ["a"], {"a": 1}, True):
        assert not tests["dns_label"](value)
        assert not tests["registry_name"](value)


def test_the_roles_call_the_rules_by_the_collection_names(tmp_path: Path) -> None:
    # the table through Ansible's Jinja, the collection found as sealer run finds it
    table = {"labels": [n for n, _ in DNS_LABELS], "registries": [n for n, _ in REGISTRY_NAMES]}
    (tmp_path / "table.json").write_text(json.dumps(table))
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  vars_files: [table.json]\n  tasks:\n"
        "    - ansible.builtin.debug:\n"
        "        msg:\n"
        "          labels: \"{{ labels | select('sealer.cluster.dns_label') | list }}\"\n"
        "          registries: \"{{ registries | select('sealer.cluster.registry_name') | list }}\"\n"
    )
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOCALHOST_WARNING": "0"}  # fmt: skip
    args = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    msg = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert msg["labels"] == [n for n, valid in DNS_LABELS if valid]
    assert msg["registries"] == [n for n, valid in REGISTRY_NAMES if valid]
