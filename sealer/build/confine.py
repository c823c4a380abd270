"""A Kubefile ``RUN`` confined with bubblewrap: the build host is not the build's to change.

The step sees the host read-only (its tools stay usable: ``/bin/sh``, python, qemu-user through
binfmt for other architectures) and may write only its platform's rootfs, which is bound at the
same path and is its working directory. Home directories, sealer's store, registry credentials
and the host's password and key files are hidden under empty tmpfs (or ``/dev/null``); ``/tmp``,
``/var/tmp`` and ``/run`` are private tmpfs. It has its own mount, PID, IPC, UTS and cgroup
namespaces, no capabilities, and no network unless the Kubefile says ``RUN --network=host``.
A pids cgroup bounds how many processes it may have; reaching the bound ends the step.

Ending the step (it finished, failed, or sealer was interrupted) kills the PID namespace's
first process, which makes the kernel kill every process of the namespace before bubblewrap
returns: no process of a RUN outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sealer.errors import BuildError

PIDS_MAX = 1024  # processes and threads of one RUN (qemu-user and Go programs use many threads)
POLL = 0.1  # seconds between looks at the step and its process count
KILL_WAIT = 10.0  # seconds bubblewrap gets to return once its namespace's first process is killed

PRIVATE = ("/tmp", "/var/tmp", "/run")  # empty tmpfs of the step's own
HIDDEN_DIRS = ("/root", "/home", "/etc/ssl/private")
HIDDEN_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")


@dataclass
class Outcome:
    returncode: int
    output: bytes  # the last bytes the step wrote to stdout and stderr
    pids_exhausted: bool = False  # the step reached PIDS_MAX and was ended


def hidden_paths(store_root: Path) -> list[Path]:
    """What a step must not see: homes, the store, credentials, the host's secrets."""
    paths = [Path(p) for p in (*HIDDEN_DIRS, *HIDDEN_FILES)]
    paths.append(store_root)
    for home in (os.environ.get("HOME"), _passwd_home()):
        if home:
            paths.append(Path(home))
    docker = os.environ.get("DOCKER_CONFIG")
    if docker:
        paths.append(Path(docker))
    for var in ("REGISTRY_AUTH_FILE", "SSH_AUTH_SOCK"):
        if os.environ.get(var):
            paths.append(Path(os.environ[var]))
    ssh = Path("/etc/ssh")
    if ssh.is_dir():
        paths.extend(sorted(ssh.glob("ssh_host_*_key")))
    return paths


def _passwd_home() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return None


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def bwrap_args(rootfs: Path, network: bool, hidden: list[Path], info_fd: int) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise BuildError("RUN needs bubblewrap (bwrap) to confine it: install the bubblewrap package")
    work = os.path.realpath(rootfs)
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys"]
    if os.path.exists("/proc/sysrq-trigger"):
        args += ["--ro-bind", "/dev/null", "/proc/sysrq-trigger"]
    for path in PRIVATE:
        if os.path.isdir(path):
            args += ["--tmpfs", path]
    resolv = os.path.realpath("/etc/resolv.conf")
    if network and _under(resolv, "/run") and os.path.isfile(resolv):
        args += ["--ro-bind", resolv, resolv]  # a resolver configuration kept in /run (systemd-resolved)
    masked: list[str] = []
    for path in sorted({os.path.realpath(p) for p in hidden}, key=lambda p: (p.count("/"), p)):
        if path in ("/", work):
            continue
        if any(_under(path, m) for m in (*PRIVATE, *masked)):
            continue  # already behind an empty tmpfs
        if os.path.isdir(path):
            args += ["--tmpfs", path]
            masked.append(path)
        elif os.path.lexists(path):
            args += ["--ro-bind", "/dev/null", path]
    args += ["--bind", work, work, "--chdir", work]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        args.append("--unshare-net")
    args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--info-fd", str(info_fd)]
    return args


class PidsGroup:
    """A pids cgroup below sealer's own, holding one step; None where none can be made."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, limit: int) -> PidsGroup | None:
        base = _own_pids_cgroup()
        if base is None:
            return None
        path = base / f"sealer-run-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
        except OSError:
            return None
        group = cls(path)
        try:
            (path / "pids.max").write_text(f"{limit}\n")
        except OSError:
            group.remove()
            return None
        return group

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def exhausted(self) -> bool:
        """Whether a fork was refused for the limit."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                name, _, count = line.partition(" ")
                if name == "max" and int(count) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def kill_all(self) -> None:
        for _ in range(100):  # a process forking while it is killed: until none is left
            try:
                pids = self.procs.read_text().split()
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)  # the last processes are still exiting


def _own_pids_cgroup() -> Path | None:
    """The directory of this process's pids cgroup (v1 pids hierarchy, or v2 with pids delegated)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mounts") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    own = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    for fields in mounts:
        if len(fields) < 4:
            continue
        mountpoint, fstype, options = fields[1], fields[2], fields[3].split(",")
        if fstype == "cgroup" and "pids" in options:
            for controllers, path in own.items():
                if "pids" in controllers.split(","):
                    return Path(mountpoint + path)
        if fstype == "cgroup2" and "" in own:
            base = Path(mountpoint + own[""])
            try:
                if "pids" in (base / "cgroup.subtree_control").read_text().split():
                    return base
            except OSError:
                pass
    return None


def run_confined(command: str, rootfs: Path, env: dict[str, str], network: bool, hidden: list[Path],
                 log: Path, tail: int) -> Outcome:  # fmt: skip
    """Run ``sh -c command`` confined in ``rootfs``; its output goes to ``log``."""
    info_read, info_write = os.pipe()
    group = PidsGroup.create(PIDS_MAX)
    proc: subprocess.Popen[bytes] | None = None
    child = 0
    try:
        args = [*bwrap_args(rootfs, network, hidden, info_write), "/bin/sh", "-c", command]
        if group is not None:
            # the step enters its cgroup before bubblewrap starts, so every process it makes is counted
            args = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group.procs), *args]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                args,
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(info_write,),
                start_new_session=True,  # its own process group: a terminal's Ctrl-C reaches sealer only
            )
        os.close(info_write)
        info_write = -1
        child = _child_pid(info_read)
        exhausted = False
        while proc.poll() is None:
            if group is not None and group.exhausted():
                exhausted = True
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(POLL)
        if exhausted:
            _end(proc, child)
        return Outcome(proc.returncode if proc.returncode is not None else -9, _tail(log, tail), exhausted)
    finally:
        if proc is not None and proc.poll() is None:
            _end(proc, child)  # interrupted: the step ends before its rootfs is removed
        if info_write >= 0:
            os.close(info_write)
        os.close(info_read)
        if group is not None:
            group.remove()


def _child_pid(fd: int) -> int:
    """The PID namespace's first process, as bubblewrap reports it once the sandbox is set up."""
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0  # bubblewrap failed before: its exit code and output say why


def _end(proc: subprocess.Popen[bytes], child: int) -> None:
    """Kill the namespace's first process (the kernel then kills the rest and bubblewrap
    returns), and bubblewrap's process group should it not return."""
    if child:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    try:
        proc.wait(KILL_WAIT if child else 0.5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tail(log: Path, size: int) -> bytes:
    with open(log, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - size))
        return f.read()
