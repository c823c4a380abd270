"""One sandbox per test run, shared by the end-to-end tests (booting is the costly part): hosts
booted with systemd-nspawn, amd64 and arm64 (through qemu-user-static), torn down at the end.

The sandbox comes up with a sudo user (``sealer``) and root login refused, as a cloud image
is; the tests that run sealer as root then permit root login (``root_login``), and the tests
of the sudo path refuse it again while they run. The tests' own look at a host logs in as the
sudo user and reads through sudo."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import SEALER, Sealer

# host 1 amd64, 2 arm64, 3 amd64, 4 arm64, 5 arm64
SANDBOX_HOSTS = "amd64,arm64,amd64,arm64,arm64"
SUDO_USER = "sealer"
# read before the sandbox's own drop-in (the first value sshd reads wins)
ROOT_LOGIN_DROPIN = "/etc/ssh/sshd_config.d/00-tests-root-login.conf"
# ansible-galaxy and ansible-playbook of the environment the tests run in
BIN = Path(sys.executable).parent


@dataclass
class SandboxHost:
    name: str
    address: str
    platform: str
    key: str
    netns: str = ""
    link: str = ""  # its veth on the sandbox's bridge
    user: str = SUDO_USER

    @property
    def arch(self) -> str:
        return self.platform.split("/")[1]

    def as_user(self, user: str) -> SandboxHost:
        return dataclasses.replace(self, user=user)

    def ssh_argv(self, command: str) -> list[str]:
        """The OpenSSH command line that runs ``command`` as root on the host."""
        remote = command if self.user == "root" else f"sudo -n sh -c {shlex.quote(command)}"
        return ["ssh", "-i", self.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"{self.user}@{self.address}", remote]  # fmt: skip

    def ssh(self, command: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command as root on the host with plain OpenSSH (through sudo unless the login is
        root): the tests' independent look at it."""
        proc = subprocess.run(
            self.ssh_argv(command), capture_output=True, text=True, check=False, timeout=120, input=input
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.address}: {command}: {proc.returncode} {proc.stderr}")
        return proc


@dataclass
class Sandbox:
    name: str
    hosts: list[SandboxHost]
    password_file: str = ""

    @property
    def key(self) -> str:
        return self.hosts[0].key


def sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEALER, "sandbox", *args], capture_output=True, text=True, check=False)


def permit_root_login(hosts: list[SandboxHost], permitted: bool) -> None:
    """Let root log in with a key or the password (or refuse it again, as the sandbox made the hosts)."""
    for host in hosts:
        change = f"echo 'PermitRootLogin yes' > {ROOT_LOGIN_DROPIN}" if permitted else (
            f"rm -f {ROOT_LOGIN_DROPIN}"
        )  # fmt: skip
        host.ssh(f"{change} && systemctl reload ssh")


# Debian's daily jobs: apt's fires at a random time within hours of boot and writes under
# /var/lib/apt while its processes run, which the tests' before/after looks at a host would see
TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "logrotate.timer", "man-db.timer",
          "e2scrub_all.timer", "fstrim.timer")  # fmt: skip


def quiet_timers(hosts: list[SandboxHost]) -> None:
    """The hosts' periodic jobs stopped and masked for the test run (the sandbox is torn down after)."""
    for host in hosts:
        host.ssh(f"systemctl mask --now {' '.join(TIMERS)} >/dev/null 2>&1; true")


@contextlib.contextmanager
def root_login_refused(hosts: list[SandboxHost]) -> Iterator[None]:
    permit_root_login(hosts, False)
    try:
        yield
    finally:
        permit_root_login(hosts, True)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    name = f"t{os.getpid()}"[:12]
    proc = sandbox_cli("up", name, "--hosts", SANDBOX_HOSTS, "--user", SUDO_USER)
    if proc.returncode != 0:
        sandbox_cli("down", name)
        pytest.fail(f"sandbox up failed: {proc.stderr}")
    try:
        rows = json.loads(sandbox_cli("ls", "--output", "json").stdout)
        mine = [r for r in rows if r["sandbox"] == name]
        hosts = [SandboxHost(r["name"], r["address"], r["platform"], r["key"], r["netns"], r["link"]) for r in mine]
        permit_root_login(hosts, True)
        quiet_timers(hosts)
        yield Sandbox(name, hosts, mine[0]["passwordFile"])
    finally:
        down = sandbox_cli("down", name)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="session")
def run_store(example_store: Sealer) -> Sealer:
    """The store with the example images, used by every run test."""
    return example_store


def run_cluster(store: Sealer, cluster: str, masters: list[SandboxHost], nodes: list[SandboxHost],
                *extra: str, image: str = "kubernetes-multi-arch:v1.19.8", key: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    args = ["run", image, "-m", ",".join(h.address for h in masters)]
    if nodes:
        args += ["-n", ",".join(h.address for h in nodes)]
    args += ["--pk", key or masters[0].key, "--cluster", cluster, "--output", "json", *extra]
    return store.run(*args, check=check)


def cluster_dir(store: Sealer, cluster: str) -> Path:
    return store.root / "clusters" / cluster


def standin_log(host: SandboxHost, cluster: str) -> list[tuple[int, str]]:
    """What the stand-ins on a host recorded: (time, call) per line."""
    proc = host.ssh(f"cat /var/lib/sealer/data/{cluster}/standin-calls.log", check=False)
    out = []
    for line in proc.stdout.splitlines():
        stamp, _, call = line.partition(" ")
        out.append((int(stamp), call))
    return out


def host_state(host: SandboxHost) -> str:
    """What a run may change on a host, to compare before and after (Ansible's /tmp aside)."""
    return host.ssh(
        "find / -xdev -path /tmp -prune -o -path /proc -prune -o -path /var/cache -prune -o -print | sort;"
        " cat /etc/hosts; ls /run"
    ).stdout


def skopeo_raw(address: str, image: str, *creds: str) -> dict[str, object]:
    import json

    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", *creds, f"docker://{address}:5000/{image}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out)
    return result
