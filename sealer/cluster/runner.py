"""Running sealer's playbooks through ansible-runner, and reading what happened per host."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sealer.cluster.collection import collections_path
from sealer.cluster.collection import playbook as collection_playbook
from sealer.cluster.results import Reports, host_report
from sealer.progress import Reporter

# Ansible runs a task on at most this many hosts at once (a worker process and an ssh session
# of the controller's each). Measured (bench/forks.py, docs/scale.md): one task on 8/16/32
# hosts takes 0.74x/0.66x/0.71x as long with forks = hosts as with ansible-runner's default
# of 5, with no knee up to 32 on a 2-core controller; 50 is what every run used before, so no
# run's per-task cost changes. Past it, measure on the controller before raising it.
FORKS_CAP = 50


def forks_for(hosts: int) -> int:
    """Forks follow the number of hosts, so that every host runs each task at once (Ansible's
    linear strategy waits for the slowest host of a task before the next one, and with
    ansible-runner's default of 5 a 16-host task takes four rounds), up to FORKS_CAP."""
    return max(1, min(hosts, FORKS_CAP))


def playbook_hosts(inventory: Path, limit: str | None) -> int:
    """The hosts a playbook runs on: the limit's, else every host of sealer's inventory (each
    one is under all.hosts); FORKS_CAP when the inventory cannot be read (Ansible will say why)."""
    if limit:
        return len([h for h in limit.split(",") if h])
    try:
        data = yaml.safe_load(inventory.read_text())
        return len(data["all"]["hosts"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return FORKS_CAP


SSH_ARGS = (
    "-o ControlMaster=auto -o ControlPersist=60s -o ControlPath=~/.ansible/cp/%C"
    " -o Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
)
# Ansible's scratch space on the hosts: under /tmp, not in root's home
REMOTE_TMP = "/tmp/.sealer-ansible"


@dataclass
class HostSummary:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass
class Failure:
    host: str
    task: str
    reason: str

    def __str__(self) -> str:
        return f"{self.host}: {self.task}: {self.reason}"


@dataclass
class PlaybookResult:
    status: str
    rc: int
    run_dir: Path
    hosts: dict[str, HostSummary] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    # per host: the tasks that changed it (or would, in check mode), as Ansible names them to the user
    changed_tasks: dict[str, list[str]] = field(default_factory=dict)
    # per host: the roles of which a task changed it (or would)
    changed_roles: dict[str, set[str]] = field(default_factory=dict)
    # what each host reported, as data (results.py)
    reports: Reports = field(default_factory=Reports)
    # with diff: each changed task's diffs (Ansible's before/after), per host
    diffs: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    # per role: the time (monotonic) of its first event: when each phase started
    role_starts: dict[str, float] = field(default_factory=dict)
    # the hosts Ansible could not reach (a play that ignores it goes on without them)
    unreachable: set[str] = field(default_factory=set)


# what Ansible says of a failed raw, command or shell task: the task's own output says more
_GENERIC = {"non-zero return code", "MODULE FAILURE"}
# ssh's own words when a raw task's session ends, not the task's
_SSH_NOISE = re.compile(r"^(Shared )?[Cc]onnection to \S+ closed\.?$")


def _reason(res: dict[str, Any]) -> str:
    # a loop's failure is its failed item's (a plugin, a CMD): Ansible's own says only that one failed
    failed = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    if failed:
        return _reason(failed[0])
    keys = ("msg", "stderr", "module_stderr", "stdout")
    if str(res.get("msg", "")).strip() in _GENERIC:
        keys = ("stderr", "stdout", "module_stderr", "msg")
    for key in keys:
        lines = [line.strip() for line in str(res.get(key) or "").splitlines()]
        lines = [line for line in lines if line and not _SSH_NOISE.match(line)]
        if lines:
            return " | ".join(lines[-3:])[:500]
    return "failed"


def _diffs(res: dict[str, Any]) -> list[dict[str, Any]]:
    """A task's diffs (a dict or a list of them), its loop items' too; a hidden (no_log) task has none."""
    found: list[dict[str, Any]] = []
    for item in [res, *(r for r in res.get("results") or [] if isinstance(r, dict))]:
        diff = item.get("diff")
        for one in diff if isinstance(diff, list) else [diff]:
            if isinstance(one, dict) and ("before" in one or "after" in one):
                found.append(one)
    return found


def _role(data: dict[str, Any]) -> str:
    """The role a task belongs to, without its collection (``sealer_rootfs``); empty for a play's own."""
    return str(data.get("role") or "").rpartition(".")[2]


def _on_ok(result: PlaybookResult, host: str, data: dict[str, Any], reporter: Reporter, check: bool) -> None:
    res = data.get("res") or {}
    report = host_report(host, res, time.monotonic())
    if report is not None:
        result.reports.add(report)
    if res.get("changed"):
        task = str(data.get("task") or "")
        result.changed_tasks.setdefault(host, []).append(task)
        result.changed_roles.setdefault(host, set()).add(_role(data))
        reporter.note(f"{host}: {task}: {'would change' if check else 'changed'}")
        result.diffs.setdefault(host, []).extend((task, one) for one in _diffs(res))


def _keep_report(result: PlaybookResult, host: str, data: dict[str, Any]) -> None:
    report = host_report(host, data.get("res") or {}, time.monotonic())
    if report is not None:
        result.reports.add(report)


def read_event(result: PlaybookResult, event: dict[str, Any], reporter: Reporter, check: bool = False) -> None:
    """One of ansible-runner's events into the result: what a host reported, what changed, what failed."""
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    host = data.get("host") or data.get("remote_addr") or ""
    task = data.get("task") or ""
    role = _role(data)
    if role and kind.startswith(("runner_on_", "playbook_on_task_start")):
        result.role_starts.setdefault(role, time.monotonic())
    if kind == "runner_on_start":
        reporter.status(host, f"{data.get('role') or 'play'}: {task}")
    elif kind == "runner_on_ok":
        _on_ok(result, host, data, reporter, check)
    elif kind in ("runner_item_on_ok", "runner_item_on_failed"):  # a loop's item: its report
        _keep_report(result, host, data)
    elif kind == "runner_on_failed":
        _keep_report(result, host, data)  # a task that gave up waiting (until, retries): its last report
        if not data.get("ignore_errors"):
            result.failures.append(Failure(host, task, _reason(data.get("res") or {})))
            reporter.note(f"{host}: {task}: FAILED")
    elif kind == "runner_on_unreachable":
        result.unreachable.add(host)
        result.failures.append(Failure(host, task, "unreachable: " + _reason(data.get("res") or {})))
        reporter.note(f"{host}: {task}: UNREACHABLE")
    elif kind == "playbook_on_stats":
        for stat, attr in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"),
                           ("dark", "unreachable"), ("skipped", "skipped")):  # fmt: skip
            for h, n in (data.get(stat) or {}).items():
                setattr(result.hosts.setdefault(h, HostSummary()), attr, n)


@dataclass(frozen=True)
class PlaybookOptions:
    """``extravars``: Ansible's extra variables; ``tags``, ``limit``: its tags and host limit;
    ``check``: Ansible's check mode (nothing changes; the roles report what would); ``diff``:
    the changed files' differences are kept in the result."""

    extravars: dict[str, Any] = field(default_factory=dict)
    tags: str | None = None
    limit: str | None = None
    check: bool = False
    diff: bool = False


def end_playbooks(grace: float = 3.0) -> None:
    """Every ansible-playbook this process started, with its workers and their ssh, ended: SIGTERM
    to its process group (ansible-runner starts it in a session of its own), SIGKILL after
    ``grace`` seconds. After an interrupt, before sealer cleans up on the hosts: a playbook left
    running would go on starting tasks there."""
    groups: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # state, parent, process group
        if len(fields) > 2 and int(fields[1]) == os.getpid() and b"ansible-playbook" in cmdline:
            groups.add(int(fields[2]))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)
        deadline = time.monotonic() + grace
        while groups and sig == signal.SIGTERM and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            groups = {g for g in groups if _group_alive(g)}
            time.sleep(0.05)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_playbook(
    playbook: str | list[dict[str, Any]], inventory: Path, run_dir: Path, reporter: Reporter,
    options: PlaybookOptions = PlaybookOptions(),
) -> PlaybookResult:  # fmt: skip
    """Run one of the collection's playbooks (by its name), or plays given as data; what each
    host did comes back in the result."""
    import ansible_runner

    check, limit = options.check, options.limit

    result = PlaybookResult("unknown", -1, run_dir)

    def on_event(event: dict[str, Any]) -> bool:
        read_event(result, event, reporter, check)
        return True

    run_dir.mkdir(parents=True, exist_ok=True)
    (Path.home() / ".ansible" / "cp").mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    envvars = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path(run_dir.parent)),
        "ANSIBLE_FORKS": str(forks_for(playbook_hosts(inventory, limit))),
        "ANSIBLE_PIPELINING": "True",
        # Ansible's default ssh_args carry -C: zlib caps every rootfs transfer at some 30 MB/s.
        # AES-GCM first: x86 (AES-NI) and ARMv8 (crypto extension) do it in hardware, so the
        # transfers spend less CPU on both ends than with OpenSSH's default ChaCha20
        "ANSIBLE_SSH_ARGS": SSH_ARGS,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_SSH_RETRIES": "2",
        "ANSIBLE_TIMEOUT": "20",
        "ANSIBLE_REMOTE_TMP": REMOTE_TMP,
    }
    runner = ansible_runner.run(
        private_data_dir=str(run_dir),
        playbook=collection_playbook(playbook) if isinstance(playbook, str) else playbook,
        inventory=str(inventory),
        envvars=envvars,
        extravars=options.extravars,
        tags=options.tags,
        limit=limit,
        cmdline=" ".join(flag for flag, on in (("--check", check), ("--diff", options.diff)) if on) or None,
        quiet=True,
        event_handler=on_event,
        # without one, ansible-runner installs SIGINT/SIGTERM handlers of its own and reports a
        # cancelled run as failed tasks; sealer's handlers end the run and its children instead
        cancel_callback=lambda: False,
        rotate_artifacts=0,
    )
    result.status = str(runner.status)
    result.rc = int(runner.rc if runner.rc is not None else -1)
    if result.rc != 0 and not result.failures:
        out = (run_dir / "artifacts").rglob("stdout")
        tail = ""
        for path in out:
            tail = path.read_text(errors="replace").strip().splitlines()[-1:][0] if path.stat().st_size else ""
        what = playbook if isinstance(playbook, str) else "plays"
        result.failures.append(Failure("ansible", what, tail or f"ansible-playbook exited {result.rc}"))
    return result
