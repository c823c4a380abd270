"""A sandbox of real hosts on this machine, for trying sealer and for its tests.

Each host is a network namespace with a veth on a bridge the sandbox owns, its own sshd
(in its own UTS namespace, so its own hostname), and a private root filesystem: an overlay
over a cached Debian userland of the host's architecture. sshd chroots every session into
that root, so an arm64 host runs a real arm64 userland through qemu-user-static's binfmt
entry: ``uname -m`` says aarch64 and arm64 binaries run.

Everything lives under ``/var/lib/sealer-sandbox`` (``$SEALER_SANDBOX_ROOT``); addresses come
from 10.213.0.0/16, one /24 per sandbox. ``down`` removes every namespace, link, mount,
process and file ``up`` made.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sealer._fs import atomic_write, file_lock
from sealer.errors import SandboxError
from sealer.names import check_name
from sealer.oci.platform import Platform
from sealer.store.mount import unmount_all

SUBNET_PREFIX = "10.213"
FIRST_HOST = 11
USERLAND_PACKAGES = "python3,rsync,openssh-sftp-server"
SUITE = "bookworm"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
QEMU_BINFMT = {"arm64": "/proc/sys/fs/binfmt_misc/qemu-aarch64"}
DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64"}

# qemu-user passes /proc through, so /proc/cpuinfo would describe the x86 machine; arm64
# hosts get this one bind-mounted over it (what a 2-core Neoverse-N1 server shows).
ARM64_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 50.00\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    for i in range(2)
)


@dataclass
class SandboxHost:
    name: str
    address: str
    platform: str
    netns: str
    veth: str

    @property
    def arch(self) -> str:
        return Platform.parse(self.platform).architecture


@dataclass
class Sandbox:
    name: str
    index: int
    bridge: str
    gateway: str
    key: str
    hosts: list[SandboxHost]

    @property
    def password_file(self) -> str:
        """root's password on every host of the sandbox (0600), for trying password logins."""
        return str(Path(self.key).parent / "root-password")

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Sandbox:
        hosts = [SandboxHost(**h) for h in data["hosts"]]  # type: ignore[attr-defined]
        return cls(
            str(data["name"]),
            int(data["index"]),  # type: ignore[call-overload]
            str(data["bridge"]),
            str(data["gateway"]),
            str(data["key"]),
            hosts,
        )


Log = Callable[[str], None]


def sandbox_root() -> Path:
    return Path(os.environ.get("SEALER_SANDBOX_ROOT", "/var/lib/sealer-sandbox"))


def _run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, input=input)
    if check and proc.returncode != 0:
        raise SandboxError(f"{' '.join(args)}: {(proc.stderr or proc.stdout).strip() or f'exit {proc.returncode}'}")
    return proc


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root: it creates network namespaces, bridges and mounts")


def _locked(root: Path) -> contextlib.AbstractContextManager[None]:
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    return file_lock(root / ".lock")


def _apt_mirror() -> str:
    """The Debian mirror this machine's apt already uses (nothing else is ever contacted)."""
    sources = Path("/etc/apt/sources.list.d")
    candidates = [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.sources")), *sorted(sources.glob("*.list"))]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for raw in text.splitlines():
            words = raw.split()
            if not words or "security" in raw:
                continue
            if words[0] == "URIs:" or words[0] == "deb":
                uris = [w for w in words[1:] if "://" in w]
                if uris and "debian" in uris[0]:
                    return uris[0]
    raise SandboxError("no Debian mirror found in /etc/apt/sources.list*: debootstrap has nowhere to fetch from")


def userland(arch: str, log: Log) -> Path:
    """The cached Debian userland for ``arch``, made once with debootstrap (renamed in when complete)."""
    if arch not in DEBIAN_ARCH:
        raise SandboxError(f"sandbox hosts can be amd64 or arm64, not {arch}")
    cache = sandbox_root() / "userlands"
    final = cache / arch
    if (final / "usr" / "bin" / "python3").exists():
        return final
    binfmt = QEMU_BINFMT.get(arch)
    if binfmt and not Path(binfmt).exists():
        raise SandboxError(
            f"{arch} hosts need qemu-user-static's binfmt entry {binfmt}: run scripts/install-system-deps.sh"
        )
    if not shutil.which("debootstrap"):
        raise SandboxError("debootstrap is not installed: run scripts/install-system-deps.sh")
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".{arch}.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    log(f"building the {arch} userland with debootstrap (once; about 1 min for amd64, 3 for arm64)")
    proc = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--arch={DEBIAN_ARCH[arch]}", f"--include={USERLAND_PACKAGES}",
         SUITE, str(work), _apt_mirror()],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    unmount_all(work)
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise SandboxError(f"debootstrap of the {arch} userland failed: {' | '.join(tail)}")
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (work / leftover).glob("*.deb"):
            f.unlink()
    shutil.rmtree(final, ignore_errors=True)
    os.rename(work, final)
    return final


def _host_dir(name: str, host: str) -> Path:
    return sandbox_root() / "sandboxes" / name / "hosts" / host


def load(name: str) -> Sandbox:
    path = sandbox_root() / "sandboxes" / check_name(name, "sandbox") / "sandbox.json"
    try:
        return Sandbox.from_json(json.loads(path.read_text()))
    except FileNotFoundError as err:
        raise SandboxError(f"no sandbox named {name}") from err


def list_sandboxes() -> list[Sandbox]:
    base = sandbox_root() / "sandboxes"
    if not base.is_dir():
        return []
    return [load(p.name) for p in sorted(base.iterdir()) if (p / "sandbox.json").exists()]


def up(name: str, platforms: list[Platform], log: Log) -> Sandbox:
    check_name(name, "sandbox")
    _require_root()
    if not _NAME.match(name):
        raise SandboxError(f"invalid sandbox name {name!r}: lowercase letters, digits and '-', at most 16")
    if not platforms:
        raise SandboxError("a sandbox needs at least one host")
    archs = [p.architecture for p in platforms]
    root = sandbox_root()
    with _locked(root):
        for arch in dict.fromkeys(archs):
            userland(arch, log)
        if (root / "sandboxes" / name / "sandbox.json").exists():
            raise SandboxError(f"sandbox {name} exists already: 'sealer sandbox down {name}' first")
        used = {s.index for s in list_sandboxes()}
        # a bridge of that number may belong to a sandbox of another root ($SEALER_SANDBOX_ROOT)
        index = next((i for i in range(1, 255) if i not in used and not Path(f"/sys/class/net/slbr{i}").exists()), None)
        if index is None:
            raise SandboxError("every sandbox address range is in use")
        box = Sandbox(
            name=name,
            index=index,
            bridge=f"slbr{index}",
            gateway=f"{SUBNET_PREFIX}.{index}.1",
            key=str(root / "sandboxes" / name / "id_ed25519"),
            hosts=[
                SandboxHost(
                    name=f"{name}-{i + 1}",
                    address=f"{SUBNET_PREFIX}.{index}.{FIRST_HOST + i}",
                    platform=str(Platform("linux", arch, "v8" if arch == "arm64" else "")),
                    netns=f"sealer-{name}-{i + 1}",
                    veth=f"slv{index}x{i + 1}",
                )
                for i, arch in enumerate(archs)
            ],
        )
        box_dir = root / "sandboxes" / name
        box_dir.mkdir(parents=True, exist_ok=True)
        # Written first, so that 'down' can clean up whatever a failed 'up' left.
        atomic_write(box_dir / "sandbox.json", json.dumps(box.to_json(), indent=2).encode())
        try:
            _make(box, log)
        except BaseException:
            _teardown(box)
            raise
        return box


def _make(box: Sandbox, log: Log) -> None:
    box_dir = sandbox_root() / "sandboxes" / box.name
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"sealer-sandbox-{box.name}", "-f", box.key)
    shutil.copy(box.key + ".pub", box_dir / "authorized_keys")
    os.chmod(box_dir / "authorized_keys", 0o600)
    _write_shadow(box, box_dir)
    (box_dir / "cpuinfo-arm64").write_text(ARM64_CPUINFO)
    _run("ip", "link", "add", box.bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{box.gateway}/24", "dev", box.bridge)
    _run("ip", "link", "set", box.bridge, "up")
    for host in box.hosts:
        log(f"starting {host.name} ({host.platform}) at {host.address}")
        _make_host(box, host, box_dir)


def _make_host(box: Sandbox, host: SandboxHost, box_dir: Path) -> None:
    hdir = _host_dir(box.name, host.name)
    rootfs, upper, work = hdir / "root", hdir / "upper", hdir / "work"
    for d in (rootfs, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    lower = sandbox_root() / "userlands" / host.arch
    _run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(rootfs))
    os.chmod(rootfs, 0o755)
    (rootfs / "etc" / "hostname").write_text(host.name + "\n")
    (rootfs / "etc" / "hosts").write_text(f"127.0.0.1 localhost\n{host.address} {host.name}\n")
    _run("mount", "-t", "proc", "proc", str(rootfs / "proc"))
    if host.arch == "arm64":
        _run("mount", "--bind", str(box_dir / "cpuinfo-arm64"), str(rootfs / "proc" / "cpuinfo"))
    _make_dev(rootfs / "dev")
    _start_host(box, host, hdir, box_dir)


def _start_host(box: Sandbox, host: SandboxHost, hdir: Path, box_dir: Path) -> None:
    """What a host's boot brings up: its network and its sshd."""
    # the network: a namespace, a veth into it, the other end on the bridge
    _run("ip", "netns", "add", host.netns)
    # a MAC of its own derived from its address: after a reboot, neighbours still know the host
    mac = "02:5e:" + ":".join(f"{int(octet):02x}" for octet in host.address.split("."))
    _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "address", mac, "netns", host.netns)
    _run("ip", "link", "set", host.veth, "master", box.bridge)
    _run("ip", "link", "set", host.veth, "up")
    _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
    _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
    _run("ip", "-n", host.netns, "link", "set", "lo", "up")
    _run("ip", "-n", host.netns, "route", "add", "default", "via", box.gateway)
    _start_sshd(box, host, hdir, box_dir)


def _stop_host(host: SandboxHost) -> None:
    """Every process of the host killed, its network gone: the host is off."""
    pids = _run("ip", "netns", "pids", host.netns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    for _ in range(50):
        if not _run("ip", "netns", "pids", host.netns, check=False).stdout.split():
            break
        time.sleep(0.1)
    _run("ip", "link", "del", host.veth, check=False)
    _run("ip", "netns", "del", host.netns, check=False)


def reboot(name: str, host_name: str) -> SandboxHost:
    """As if the host restarted: every process stops, the network namespace is made anew, /run and
    /tmp start empty; the root filesystem (its disk) keeps everything else."""
    _require_root()
    with _locked(sandbox_root()):
        box = load(name)
        host = next((h for h in box.hosts if host_name in (h.name, h.address)), None)
        if host is None:
            raise SandboxError(f"sandbox {name} has no host {host_name}")
        _stop_host(host)
        hdir = _host_dir(box.name, host.name)
        for volatile in ("run", "tmp"):
            for entry in (hdir / "root" / volatile).iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        (hdir / "sshd.pid").unlink(missing_ok=True)
        _start_host(box, host, hdir, sandbox_root() / "sandboxes" / box.name)
        return host


def _write_shadow(box: Sandbox, box_dir: Path) -> None:
    """A copy of this machine's shadow file whose root has the sandbox's own password. Each host's
    sshd sees it in place of /etc/shadow (in a mount namespace of its own), so a password login
    works on sandbox hosts and never touches the machine's accounts."""
    password = secrets.token_urlsafe(18)
    atomic_write(Path(box.password_file), (password + "\n").encode(), mode=0o600)
    # the password goes to openssl on stdin: never in a process listing
    hashed = _run("openssl", "passwd", "-6", "-stdin", input=password + "\n").stdout.strip()
    lines = Path("/etc/shadow").read_text().splitlines()
    shadow = [f"root:{hashed}:19000:0:99999:7:::" if ln.startswith("root:") else ln for ln in lines]
    atomic_write(box_dir / "shadow", ("\n".join(shadow) + "\n").encode(), mode=0o600)


def _make_dev(dev: Path) -> None:
    _run("mount", "-t", "tmpfs", "-o", "mode=755,size=1m", "tmpfs", str(dev))
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                               ("urandom", 1, 9), ("tty", 5, 0)):  # fmt: skip
        _run("mknod", "-m", "666", str(dev / name), "c", str(major), str(minor))
    (dev / "pts").mkdir()
    (dev / "shm").mkdir(mode=0o1777)
    _run("mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts", str(dev / "pts"))
    (dev / "ptmx").symlink_to("pts/ptmx")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        (dev / name).symlink_to(f"/proc/self/fd/{i}")
    (dev / "fd").symlink_to("/proc/self/fd")


def _start_sshd(box: Sandbox, host: SandboxHost, hdir: Path, box_dir: Path) -> None:
    key = hdir / "ssh_host_ed25519_key"
    if not key.exists():  # a reboot keeps the host's key, as a real host's disk does
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key))
    config = hdir / "sshd_config"
    config.write_text(
        f"ListenAddress {host.address}:22\n"
        f"HostKey {key}\n"
        f"PidFile {hdir / 'sshd.pid'}\n"
        # the sandbox's key, and the keys in the host's own /root/.ssh, as a real host would
        f"AuthorizedKeysFile {box_dir / 'authorized_keys'} {hdir / 'root' / 'root' / '.ssh' / 'authorized_keys'}\n"
        "PermitRootLogin yes\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "MaxStartups 100:30:200\n"
        "MaxSessions 50\n"
        "AcceptEnv LANG LC_*\n"
        f"ChrootDirectory {hdir / 'root'}\n"
        "Subsystem sftp internal-sftp\n"
        "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    _run("/usr/sbin/sshd", "-t", "-f", str(config))
    # its own UTS namespace (the host's hostname) and mount namespace (the sandbox's shadow file);
    # sshd daemonizes and outlives us
    _run("ip", "netns", "exec", host.netns, "unshare", "--uts", "--mount", "sh", "-c",
         f"mount --bind {box_dir / 'shadow'} /etc/shadow && hostname {host.name}"
         f" && exec /usr/sbin/sshd -f {config} -E {hdir / 'sshd.log'}")  # fmt: skip
    for _ in range(50):
        if (hdir / "sshd.pid").exists():
            return
        time.sleep(0.1)
    raise SandboxError(f"{host.name}: sshd did not start (see {hdir / 'sshd.log'})")


def down(name: str) -> None:
    check_name(name, "sandbox")
    _require_root()
    root = sandbox_root()
    with _locked(root):
        _teardown(load(name))


def _teardown(box: Sandbox) -> None:
    """Remove processes, mounts, links, namespaces and files; tolerate any of them being gone."""
    box_dir = sandbox_root() / "sandboxes" / check_name(box.name, "sandbox")
    for host in box.hosts:
        _stop_host(host)
    _run("ip", "link", "del", box.bridge, check=False)
    unmount_all(box_dir)
    shutil.rmtree(box_dir, ignore_errors=True)
