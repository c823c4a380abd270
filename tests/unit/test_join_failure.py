"""A failed kubeadm join says why, without its secrets: the join task runs with no_log, and the
task after it fails with kubeadm's exit status and last lines, passed through the collection's
join_failure filter (plugins/filter/join.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "abcdef.0123456789abcdef"
HASH = "sha256:" + "5f" * 32
CERT_KEY = "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204"
COMMAND = (
    f"kubeadm join apiserver.cluster.local:6443 --token {TOKEN} --discovery-token-ca-cert-hash {HASH} "
    f"--control-plane --certificate-key {CERT_KEY}"
)
OUTPUT = f"""[preflight] Running pre-flight checks
[preflight] Reading configuration from the cluster...
error execution phase preflight: couldn't validate the identity of the API Server: token {TOKEN} is not valid
    for the CA hash {HASH[len("sha256:") :]}; the key {CERT_KEY} was not used
To see the stack trace of this error execute with --v=5 or higher
Shared connection to 10.0.0.2 closed.
"""


def filter_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sealer_cluster_filter_join", ROOT / "plugins" / "filter" / "join.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_join_says_its_exit_status_and_last_lines_without_the_secrets() -> None:
    join_failure = filter_module().FilterModule().filters()["join_failure"]
    said = join_failure({"rc": 1, "stdout": OUTPUT, "stderr": "", "failed": False}, COMMAND)
    assert said.startswith("kubeadm join exited 1: ")
    assert "couldn't validate the identity of the API Server" in said and "--v=5" in said
    assert "Shared connection" not in said
    for secret in (TOKEN, HASH, HASH[len("sha256:") :], CERT_KEY, "0123456789abcdef", CERT_KEY[:40]):
        assert secret not in said, secret
    assert said.count("<redacted>") == 3


def test_the_secrets_are_removed_by_their_form_when_the_command_is_not_given() -> None:
    module = filter_module()
    said = module.join_failure({"rc": 2, "stdout": "", "stderr": f"--token={TOKEN} {HASH} {CERT_KEY}"})
    assert TOKEN not in said and HASH[-64:] not in said and CERT_KEY not in said
    assert module.secrets_of(COMMAND) == [TOKEN, HASH, CERT_KEY]
    assert module.secrets_of(f"kubeadm join x --token={TOKEN}") == [TOKEN]
    assert module.join_failure({"rc": 1}) == "kubeadm join exited 1: no output"
    long = "\n".join(f"line {i}" for i in range(20))
    assert module.join_failure({"rc": 1, "stdout": long}, lines=2) == "kubeadm join exited 1: line 18 | line 19"
    # long lines: their end is kept, what says why, within what sealer shows of a failure
    wordy = module.join_failure({"rc": 1, "stdout": "x" * 2000 + f"\nthe end {TOKEN}"})
    assert len(wordy) < 500 and wordy.endswith("the end <redacted>") and TOKEN[:10] not in wordy


def test_the_join_tasks_keep_their_commands_out_of_the_logs_and_the_next_task_reports() -> None:
    tasks = yaml.safe_load((ROOT / "roles" / "sealer_kubernetes" / "tasks" / "join.yml").read_text())
    joins = [t for t in tasks if "kubeadm join" in t["name"] and "ansible.builtin.raw" in t]
    assert len(joins) == 2
    for task in joins:
        assert task["no_log"] is True and task["failed_when"] is False, task["name"]
        after = tasks[tasks.index(task) + 1]
        assert (
            task["register"] in after["ansible.builtin.fail"]["msg"]
            and "join_failure" in after["ansible.builtin.fail"]["msg"]
        )
        assert f"{task['register']}.rc" in after["when"] and "no_log" not in after
    # every task that names a secret runs with no_log
    for task in tasks:
        text = yaml.safe_dump({k: v for k, v in task.items() if k not in ("name", "ansible.builtin.fail")})
        if "sealer_kubernetes_join_" in text or "sealer_kubernetes_join.stdout" in text:
            assert task.get("no_log") is True, task["name"]


PATH = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
PLAY = f"""- hosts: localhost
  gather_facts: false
  vars:
    join_command: "{COMMAND}"
  tasks:
    - name: Run the join, whose command holds the secrets
      ansible.builtin.raw: "echo {{{{ join_command | quote }}}} > /dev/null; cat kubeadm.out >&2; exit 1"
      args:
        chdir: "{{{{ playbook_dir }}}}"
      no_log: true
      changed_when: true
      failed_when: false
      register: joined
    - name: Stop at the failed join
      ansible.builtin.fail:
        msg: "{{{{ joined | sealer.cluster.join_failure(join_command) }}}}"
      when: joined.rc | default(0) != 0
"""


def test_ansible_runner_keeps_the_secrets_out_of_its_artifacts_and_reports_the_failure(
    tmp_path: Path, collections: Path
) -> None:
    import ansible_runner

    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "join.yml").write_text(PLAY)
    (tmp_path / "project" / "kubeadm.out").write_text(OUTPUT)  # kubeadm saying the secrets
    events: list[dict[str, Any]] = []
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path), playbook="join.yml", inventory="localhost ansible_connection=local",
        envvars={"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1", "PATH": PATH},
        quiet=True, event_handler=lambda e: events.append(e) or True, rotate_artifacts=0,
    )  # fmt: skip
    assert runner.rc != 0
    failed = [e["event_data"]["res"] for e in events if e.get("event") == "runner_on_failed"]
    assert len(failed) == 1 and failed[0]["msg"].startswith("kubeadm join exited 1: [preflight]")
    assert "error execution phase preflight" in failed[0]["msg"] and "<redacted>" in failed[0]["msg"]
    artifacts = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
    assert "couldn't validate the identity" in artifacts
    for secret in (TOKEN, HASH[len("sha256:") :], CERT_KEY):
        assert secret not in artifacts and secret not in json.dumps(events), secret
