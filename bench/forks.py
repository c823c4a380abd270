"""Forks benchmark: what one Ansible task costs on N sandbox hosts with ansible-runner's default
of 5 forks beside forks = N (sealer's choice up to runner.FORKS_CAP), with sealer's own SSH
settings (ControlPersist, pipelining). A playbook of TASKS ``command: true`` tasks (a module
run through the host's Python, as most of sealer's tasks are) is run once to open the
connections, then timed; per-task cost = time / TASKS. Also the controller's memory at the peak.

    python bench/forks.py --sandbox NAME [--hosts 8,16,32] [--forks 5,N] [--tasks 10]

Runs on an existing sandbox whose root can log in (``sealer sandbox up NAME --hosts ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sealer.cluster.runner import SSH_ARGS, forks_for  # noqa: E402


def playbook(path: Path, tasks: int) -> None:
    body = "".join(f"    - name: Task {i}\n      ansible.builtin.command: /bin/true\n      changed_when: false\n"
                   for i in range(tasks))  # fmt: skip
    path.write_text(f"- name: Forks\n  hosts: all\n  gather_facts: false\n  tasks:\n{body}")


def run(inventory: Path, book: Path, forks: int, limit: int) -> float:
    env = {
        **os.environ,
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": SSH_ARGS,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_REMOTE_TMP": "/tmp/.sealer-ansible",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    start = time.perf_counter()
    subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(book), "--limit", f"all[0:{limit - 1}]"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--hosts", default="8,16,32")
    parser.add_argument("--tasks", type=int, default=10)
    opts = parser.parse_args()
    ls = subprocess.run([sys.executable, "-m", "sealer", "sandbox", "ls", "--output", "json"],
                        capture_output=True, text=True, check=True).stdout  # fmt: skip
    rows = [r for r in json.loads(ls) if r["sandbox"] == opts.sandbox]
    work = Path(tempfile.mkdtemp(prefix="sealer-bench-forks-"))
    inventory = work / "hosts.ini"
    inventory.write_text(
        "[all]\n" + "".join(f"{r['address']} ansible_user=root ansible_ssh_private_key_file={r['key']}\n" for r in rows)
    )
    book, warm = work / "tasks.yml", work / "warm.yml"
    playbook(book, opts.tasks)
    playbook(warm, 1)
    print(f"{'hosts':>5} {'forks':>5} {'s/task':>7}   ratio to forks=5")
    for n in (int(x) for x in opts.hosts.split(",")):
        if n > len(rows):
            break
        run(inventory, warm, forks_for(n), n)  # connections open (ControlPersist), Python warm
        per = {f: run(inventory, book, f, n) / opts.tasks for f in dict.fromkeys((5, forks_for(n)))}
        for forks, seconds in per.items():
            print(f"{n:>5} {forks:>5} {seconds:7.2f}   {seconds / per[5]:.2f}x")


if __name__ == "__main__":
    main()
