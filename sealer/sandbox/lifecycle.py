"""A sandbox of real hosts on this machine, for trying sealer and for its tests.

Each host is a booted machine: ``systemd-nspawn`` starts systemd as PID 1 in namespaces of its
own (PID, mount, UTS, IPC, and a network namespace with a veth on a bridge the sandbox owns),
on a private root filesystem: an overlay over a cached Debian userland of the host's
architecture. sshd, dbus and whatever a run enables are units. An arm64 host runs a real
arm64 userland, systemd included, through qemu-user-static's binfmt entry: ``uname -m``
says aarch64 and arm64 binaries run.

Everything lives under ``/var/lib/sealer-sandbox`` (``$SEALER_SANDBOX_ROOT``); addresses come
from 10.213.0.0/16, one /24 per sandbox. A host is stopped by ending its process tree (a
shutdown under qemu can hang), so ``reboot`` and ``down`` never depend on a clean poweroff;
``down`` removes every namespace, link, mount, process and file ``up`` made.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from sealer._fs import atomic_write, file_lock
from sealer.errors import SandboxError
from sealer.names import check_name
from sealer.oci.platform import Platform
from sealer.store.mount import unmount_all

SUBNET_PREFIX = "10.213"
# hosts behind a bastion: a second bridge per sandbox, with no address on this machine
INTERNAL_PREFIX = "10.214"
FIRST_HOST = 11
# systemd boots the host; sshd, dbus and sudo make it a machine an operator would recognise
USERLAND_PACKAGES = "python3,rsync,openssh-sftp-server,openssh-server,systemd,systemd-sysv,dbus,sudo,iproute2"
SUITE = "bookworm"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
QEMU_BINFMT = {"arm64": "/proc/sys/fs/binfmt_misc/qemu-aarch64"}
DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64"}
# an emulated systemd takes ~45 s to reach multi-user.target alone; several share two cores
BOOT_TIMEOUT = 420.0

# qemu-user passes /proc through, so /proc/cpuinfo would describe the x86 machine; arm64
# hosts get this one bind-mounted over it (what a 2-core Neoverse-N1 server shows).
ARM64_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 50.00\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    for i in range(2)
)
ARM64_CPUINFO_PATH = "/usr/lib/sealer-sandbox/cpuinfo"

# --link-rate: tc's own spelling (100mbit), up to 10 Gbit/s
_RATE = re.compile(r"^([1-9][0-9]{0,6})(kbit|mbit|gbit)$")
_RATE_UNIT = {"kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}
MAX_LINK_RATE = 10_000_000_000

# systemd, logind and dbus of a booted host hold some 8 inotify instances, all counted against
# this machine's root; past Linux's default limit (128) a host's systemd stalls early in its boot
# ("Failed to acquire watch file descriptor: Too many open files"), at about 20 hosts
INOTIFY_PER_HOST = 10
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


@dataclass
class SandboxHost:
    name: str
    address: str
    platform: str
    netns: str
    veth: str
    internal: bool = False  # on the internal bridge only: reached through the bastion
    bastion: bool = False  # a leg on each bridge, IP forwarding off
    inner_address: str = ""  # the bastion's address on the internal bridge
    inner_veth: str = ""  # the bastion's veth on the internal bridge

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
    user: str = ""  # a login user with sudo; root cannot log in over SSH when set
    sudo_password: bool = False  # the user's sudo asks for the sandbox's password
    internal_bridge: str = ""  # the bridge of the hosts behind the bastion (none: no bastion)
    link_rate: str = ""  # each host's link and the controller's uplink, as tc reads it (100mbit)

    @property
    def password_file(self) -> str:
        """The password of root (and of the user) on every host of the sandbox (0600)."""
        return str(Path(self.key).parent / "root-password")

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Sandbox:
        # a sandbox made by another sealer version may record more of a host: what this one knows
        known = {f.name for f in fields(SandboxHost)}
        hosts = [SandboxHost(**{k: v for k, v in h.items() if k in known}) for h in data["hosts"]]  # type: ignore[attr-defined]
        return cls(
            str(data["name"]),
            int(data["index"]),  # type: ignore[call-overload]
            str(data["bridge"]),
            str(data["gateway"]),
            str(data["key"]),
            hosts,
            str(data.get("user") or ""),
            bool(data.get("sudo_password")),
            str(data.get("internal_bridge") or ""),
            str(data.get("link_rate") or ""),
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


def _userland_stamp() -> str:
    return f"{SUITE} {USERLAND_PACKAGES}\n"


def userland(arch: str, log: Log) -> Path:
    """The cached Debian userland for ``arch``, made once with debootstrap (renamed in when
    complete); a cache made with other packages is made again."""
    if arch not in DEBIAN_ARCH:
        raise SandboxError(f"sandbox hosts can be amd64 or arm64, not {arch}")
    cache = sandbox_root() / "userlands"
    final = cache / arch
    stamp = final / ".sealer-userland"
    if stamp.exists() and stamp.read_text() == _userland_stamp():
        return final
    binfmt = QEMU_BINFMT.get(arch)
    if binfmt and not Path(binfmt).exists():
        raise SandboxError(
            f"{arch} hosts need qemu-user-static's binfmt entry {binfmt}: run scripts/install-system-deps.sh"
        )
    for tool in ("debootstrap", "systemd-nspawn"):
        if not shutil.which(tool):
            raise SandboxError(f"{tool} is not installed: run scripts/install-system-deps.sh")
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".{arch}.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    log(f"building the {arch} userland with debootstrap (once; about 2 min for amd64, 6 for arm64)")
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
    _generalise(work)
    (work / ".sealer-userland").write_text(_userland_stamp())
    shutil.rmtree(final, ignore_errors=True)
    os.rename(work, final)
    return final


def _generalise(root: Path) -> None:
    """What must differ between hosts is made per host at 'up': host keys and machine id."""
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc" / "machine-id").write_text("")
    (root / "var" / "lib" / "dbus" / "machine-id").unlink(missing_ok=True)
    wants = root / "etc" / "systemd" / "system"
    # no console logins (nspawn's console is a log file) and nothing waiting for a network manager
    for unit in ("getty.target", "console-getty.service", "systemd-networkd-wait-online.service"):
        masked = wants / unit
        masked.unlink(missing_ok=True)
        masked.symlink_to("/dev/null")


def _check_binfmt_credentials(arch: str) -> None:
    """sudo on an emulated host needs binfmt's flag C: a setuid program gets its own credentials."""
    entry = QEMU_BINFMT.get(arch)
    if entry is None:
        return
    flags = next((ln.split()[1] for ln in Path(entry).read_text().splitlines() if ln.startswith("flags:")), "")
    if "C" not in flags:
        raise SandboxError(
            f"{entry} lacks flag C (sudo would not work on {arch} hosts): run scripts/install-system-deps.sh"
        )


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


def parse_link_rate(text: str) -> int:
    """Bits per second of a rate written as tc writes it (50mbit, 1gbit)."""
    match = _RATE.fullmatch(text.lower())
    bits = int(match.group(1)) * _RATE_UNIT[match.group(2)] if match else 0
    if not 0 < bits <= MAX_LINK_RATE:
        raise SandboxError(f"invalid link rate {text!r}: a number and kbit, mbit or gbit, at most 10gbit (100mbit)")
    return bits


def ensure_inotify_instances(hosts: int, limit: Path = INOTIFY_INSTANCES) -> int | None:
    """Raise the inotify instance limit so that ``hosts`` more hosts can boot on top of what
    the machine already uses (the default 128 left for it); never lowered. The new limit, if raised."""
    needed = 128 + INOTIFY_PER_HOST * hosts
    if int(limit.read_text()) >= needed:
        return None
    limit.write_text(f"{needed}\n")
    return needed


def _check_up_arguments(
    name: str, platforms: list[Platform], user: str, sudo_password: bool, bastion: int, link_rate: str
) -> str:
    """Every argument of ``up`` checked before anything is made; the link rate as tc reads it."""
    check_name(name, "sandbox")
    _require_root()
    if link_rate:
        parse_link_rate(link_rate)
    if not _NAME.match(name):
        raise SandboxError(f"invalid sandbox name {name!r}: lowercase letters, digits and '-', at most 16")
    if user and (not _USER.match(user) or user == "root"):
        raise SandboxError(f"invalid user name {user!r}: lowercase letters, digits, '_' and '-', not root")
    if sudo_password and not user:
        raise SandboxError("--sudo-password needs --user")
    if not platforms:
        raise SandboxError("a sandbox needs at least one host")
    if bastion and not (0 < bastion <= len(platforms) and len(platforms) > 1):
        raise SandboxError(
            f"--bastion {bastion}: the number of one of the {len(platforms)} hosts, with others behind it"
        )
    return link_rate.lower()


def up(
    name: str, platforms: list[Platform], log: Log, user: str = "", sudo_password: bool = False, bastion: int = 0,
    link_rate: str = "",
) -> Sandbox:  # fmt: skip
    """Boot a sandbox. ``bastion``: the number (from 1) of a host that is the only way to the
    others: they sit on an internal bridge this machine has no address on. ``link_rate``: each
    host's link and this machine's uplink to them limited with tc (100mbit)."""
    link_rate = _check_up_arguments(name, platforms, user, sudo_password, bastion, link_rate)
    if not shutil.which("systemd-nspawn"):
        raise SandboxError("systemd-nspawn is not installed: run scripts/install-system-deps.sh")
    archs = [p.architecture for p in platforms]
    root = sandbox_root()
    with _locked(root):
        for arch in dict.fromkeys(archs):
            userland(arch, log)
            _check_binfmt_credentials(arch)
        if (root / "sandboxes" / name / "sandbox.json").exists():
            raise SandboxError(f"sandbox {name} exists already: 'sealer sandbox down {name}' first")
        used = {s.index for s in list_sandboxes()}
        # a bridge of that number may belong to a sandbox under another SEALER_SANDBOX_ROOT
        index = next(
            (
                i
                for i in range(1, 255)
                if i not in used and not any(Path(f"/sys/class/net/{d}{i}").exists() for d in ("slbr", "slib", "slif"))
            ),
            None,
        )
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
                    address=f"{INTERNAL_PREFIX if 0 < bastion != i + 1 else SUBNET_PREFIX}.{index}.{FIRST_HOST + i}",
                    platform=str(Platform("linux", arch, "v8" if arch == "arm64" else "")),
                    netns=f"sealer-{name}-{i + 1}",
                    veth=f"slv{index}x{i + 1}",
                    internal=bool(bastion) and i + 1 != bastion,
                    bastion=i + 1 == bastion,
                    inner_address=f"{INTERNAL_PREFIX}.{index}.{FIRST_HOST + i}" if i + 1 == bastion else "",
                    inner_veth=f"slv{index}y{i + 1}" if i + 1 == bastion else "",
                )
                for i, arch in enumerate(archs)
            ],
            user=user,
            sudo_password=sudo_password,
            internal_bridge=f"slib{index}" if bastion else "",
            link_rate=link_rate,
        )
        running = sum(len(b.hosts) for b in list_sandboxes()) + len(platforms)
        raised = ensure_inotify_instances(running)
        if raised:
            log(f"raised fs.inotify.max_user_instances to {raised} for {running} sandbox hosts")
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
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"sealer-sandbox-{box.name}", "-f", box.key)
    password = secrets.token_urlsafe(18)
    atomic_write(Path(box.password_file), (password + "\n").encode(), mode=0o600)
    # the password goes to openssl on stdin: never in a process listing
    hashed = _run("openssl", "passwd", "-6", "-stdin", input=password + "\n").stdout.strip()
    _run("ip", "link", "add", box.bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{box.gateway}/24", "dev", box.bridge)
    _run("ip", "link", "set", box.bridge, "up")
    if box.internal_bridge:  # no address here: this machine cannot reach the hosts on it
        _run("ip", "link", "add", box.internal_bridge, "type", "bridge")
        _run("ip", "link", "set", box.internal_bridge, "up")
    _shape_uplink(box)
    for host in box.hosts:
        _make_host(box, host, hashed)
    for host in box.hosts:
        log(f"booting {host.name} ({host.platform}) at {host.address}")
        _start_host(box, host)
    for host in box.hosts:
        _wait_for_sshd(box, host)


def _make_host(box: Sandbox, host: SandboxHost, hashed_password: str) -> None:
    """The host's disk: an overlay over the userland, with what makes this host itself."""
    hdir = _host_dir(box.name, host.name)
    rootfs, upper, work = hdir / "root", hdir / "upper", hdir / "work"
    for d in (rootfs, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    lower = sandbox_root() / "userlands" / host.arch
    _run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(rootfs))
    os.chmod(rootfs, 0o755)
    etc = rootfs / "etc"
    (etc / "hostname").write_text(host.name + "\n")
    (etc / "hosts").write_text(f"127.0.0.1 localhost\n{host.address} {host.name}\n")
    (etc / "machine-id").write_text(secrets.token_hex(16) + "\n")
    host_key = etc / "ssh" / "ssh_host_ed25519_key"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(host_key))
    (etc / "ssh" / "sshd_config.d" / "sealer-sandbox.conf").write_text(
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
        f"PermitRootLogin {'no' if box.user else 'yes'}\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        # several Ansible forks and sealer's own connections at once
        "MaxStartups 100:30:200\n"
        "MaxSessions 50\n"
    )
    _set_password(etc / "shadow", "root", hashed_password)
    if host.arch == "arm64":
        cpuinfo = rootfs / ARM64_CPUINFO_PATH.lstrip("/")
        cpuinfo.parent.mkdir(parents=True, exist_ok=True)
        cpuinfo.write_text(ARM64_CPUINFO)
    _authorize(rootfs, Path("/root"), box.key + ".pub", 0, 0)
    if box.user:
        _add_user(box, rootfs, hashed_password)


def _set_password(shadow: Path, user: str, hashed: str) -> None:
    lines = [
        f"{user}:{hashed}:19000:0:99999:7:::" if ln.startswith(f"{user}:") else ln
        for ln in shadow.read_text().splitlines()
    ]
    atomic_write(shadow, ("\n".join(lines) + "\n").encode(), mode=0o640)
    os.chown(shadow, 0, _group_id(shadow.parent / "group", "shadow"))


def _group_id(group_file: Path, name: str) -> int:
    for line in group_file.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    return 0


def _authorize(rootfs: Path, home: Path, public_key: str, uid: int, gid: int) -> None:
    ssh = rootfs / home.relative_to("/") / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    keys = ssh / "authorized_keys"
    shutil.copy(public_key, keys)
    os.chmod(keys, 0o600)
    for path in (ssh, keys):
        os.chown(path, uid, gid)


def _add_user(box: Sandbox, rootfs: Path, hashed_password: str) -> None:
    """The login user: the sandbox's key and password, sudo for everything (with that password
    when the sandbox says so), as a cloud image's default user."""
    _run("useradd", "--root", str(rootfs), "--create-home", "--shell", "/bin/bash", "--user-group", box.user)
    _set_password(rootfs / "etc" / "shadow", box.user, hashed_password)
    fields = next(ln for ln in (rootfs / "etc" / "passwd").read_text().splitlines() if ln.startswith(f"{box.user}:"))
    uid, gid = int(fields.split(":")[2]), int(fields.split(":")[3])
    _authorize(rootfs, Path("/home") / box.user, box.key + ".pub", uid, gid)
    rule = f"{box.user} ALL=(ALL:ALL) {'' if box.sudo_password else 'NOPASSWD: '}ALL\n"
    atomic_write(rootfs / "etc" / "sudoers.d" / "sealer-sandbox", rule.encode(), mode=0o440)


def _start_host(box: Sandbox, host: SandboxHost) -> None:
    """Power on: a fresh network namespace with the host's veth, then systemd-nspawn boots the
    host's systemd inside it. nspawn outlives this process; its console goes to a log file."""
    hdir = _host_dir(box.name, host.name)
    _run("ip", "netns", "add", host.netns)
    _leg(host, host.veth, "eth0", box.internal_bridge if host.internal else box.bridge, host.address)
    _run("ip", "-n", host.netns, "link", "set", "lo", "up")
    if not host.internal:  # the hosts behind the bastion have no way out: only the bastion reaches them
        _run("ip", "-n", host.netns, "route", "add", "default", "via", box.gateway)
    if host.bastion:
        _leg(host, host.inner_veth, "eth1", box.internal_bridge, host.inner_address)
        # it carries SSH connections inward (its sshd's forwarding), never packets
        _run("ip", "netns", "exec", host.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
    _shape_host_link(box, host)
    # nspawn itself runs in this machine's namespaces (inside 'ip netns exec' it would see a
    # /sys without cgroups) and puts the host into its network namespace
    args = [
        "systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
        f"--directory={hdir / 'root'}", f"--machine={host.name}", f"--hostname={host.name}",
        f"--network-namespace-path=/run/netns/{host.netns}",
        "--console=read-only", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
    ]  # fmt: skip
    if host.arch == "arm64":
        # nspawn resolves the source of a mount over /proc inside the host's own root
        args.append(f"--bind-ro={ARM64_CPUINFO_PATH}:/proc/cpuinfo")
    with open(hdir / "console.log", "ab") as console:
        nspawn = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True
        )
    (hdir / "nspawn.pid").write_text(f"{nspawn.pid}\n")


def _leg(host: SandboxHost, veth: str, inside: str, bridge: str, address: str) -> None:
    """A veth from ``bridge`` into the host's namespace (named ``inside`` there) with ``address``."""
    # a MAC of its own derived from its address: after a reboot, neighbours still know the host
    mac = "02:5e:" + ":".join(f"{int(octet):02x}" for octet in address.split("."))
    _run("ip", "link", "add", veth, "type", "veth", "peer", "name", inside, "address", mac, "netns", host.netns)
    _run("ip", "link", "set", veth, "master", bridge)
    _run("ip", "link", "set", veth, "up")
    _run("ip", "-n", host.netns, "addr", "add", f"{address}/24", "dev", inside)
    _run("ip", "-n", host.netns, "link", "set", inside, "up")


def _sshd_banner(host: SandboxHost) -> bool:
    """sshd answers with its banner; asked from inside the host's own namespace when this
    machine cannot reach it (a host behind the bastion)."""
    if host.internal:
        probe = f"exec 3<>/dev/tcp/{host.address}/22 && head -c 4 <&3"
        proc = _run("ip", "netns", "exec", host.netns, "timeout", "5", "bash", "-c", probe, check=False)
        return proc.stdout.startswith("SSH-")
    with contextlib.suppress(OSError), socket.create_connection((host.address, 22), timeout=2) as sock:
        sock.settimeout(5)
        return sock.recv(4).startswith(b"SSH-")
    return False


def _tbf(box: Sandbox) -> list[str]:
    """A token bucket at the link rate: packets beyond it wait in the queue (up to 50 ms of it),
    as on a real NIC, rather than being dropped. The bucket holds 10 ms of the rate, at least
    64 KiB: a veth hands over 64 KiB GSO packets, which a smaller bucket would cut up in software."""
    bits = parse_link_rate(box.link_rate)
    burst = max(bits // 8 // 100, 64 << 10)
    return ["root", "tbf", "rate", box.link_rate, "burst", str(burst), "latency", "50ms"]


def _uplink_ifb(box: Sandbox) -> str:
    return f"slif{box.index}"


def _shape_uplink(box: Sandbox) -> None:
    """The controller's one uplink to every host, both ways. What it sends leaves through the
    bridge's own device: shaped at its egress, like a host's link. What it receives arrives at
    the bridge device's ingress, where nothing can queue: it is redirected to an ifb device of
    the sandbox's and shaped at that device's egress (this kernel has no ingress policer, and a
    policer would drop above the rate where a real NIC queues)."""
    if not box.link_rate:
        return
    ifb = _uplink_ifb(box)
    _run("tc", "qdisc", "replace", "dev", box.bridge, *_tbf(box))
    _run("ip", "link", "add", ifb, "type", "ifb")
    _run("ip", "link", "set", ifb, "up")
    _run("tc", "qdisc", "replace", "dev", ifb, *_tbf(box))
    _run("tc", "qdisc", "add", "dev", box.bridge, "handle", "ffff:", "ingress")
    every_packet = ["protocol", "all", "u32", "match", "u32", "0", "0"]
    redirect = ["action", "mirred", "egress", "redirect", "dev", ifb]
    _run("tc", "filter", "add", "dev", box.bridge, "parent", "ffff:", *every_packet, *redirect)


def _shape_host_link(box: Sandbox, host: SandboxHost) -> None:
    """A host behind a RATE NIC, both ways, each shaped where its packets leave: the host's
    eth0 (its uploads, to peers and the controller alike) and the bridge's end of its veth (its
    downloads). Egress on both ends of the veth needs no ifb device and queues instead of
    dropping, so TCP sees the link as a real one; made again with the veth at every boot."""
    if not box.link_rate:
        return
    _run("tc", "-n", host.netns, "qdisc", "replace", "dev", "eth0", *_tbf(box))
    _run("tc", "qdisc", "replace", "dev", host.veth, *_tbf(box))


def _wait_for_sshd(box: Sandbox, host: SandboxHost, timeout: float = BOOT_TIMEOUT) -> None:
    """Booted, as far as a user can tell: sshd answers with its banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _host_pids(host, _host_dir(box.name, host.name)):
            raise SandboxError(f"{host.name}: systemd-nspawn stopped while booting: {_console_tail(box, host)}")
        if _sshd_banner(host):
            return
        time.sleep(0.5)
    tail = _console_tail(box, host)
    raise SandboxError(f"{host.name}: sshd did not answer within {timeout:.0f} s of booting: {tail}")


def _console_tail(box: Sandbox, host: SandboxHost) -> str:
    """The last words of the host's console (its directory goes when a failed 'up' cleans up)."""
    try:
        text = (_host_dir(box.name, host.name) / "console.log").read_text(errors="replace")
    except OSError:
        return "no console output"
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if ln.strip()]
    return " | ".join(lines[-3:]) or "no console output"


def _host_pids(host: SandboxHost, hdir: Path | None = None) -> list[int]:
    """Every process of the host: systemd-nspawn and the tree it booted (all in the netns)."""
    pids = [int(p) for p in _run("ip", "netns", "pids", host.netns, check=False).stdout.split() if p.isdigit()]
    pid_file = (hdir or Path()) / "nspawn.pid"
    with contextlib.suppress(OSError, ValueError):
        nspawn = int(pid_file.read_text())
        # the recorded pid is ours only while it still is this host's nspawn
        if f"--machine={host.name}\0".encode() in Path(f"/proc/{nspawn}/cmdline").read_bytes():
            pids.append(nspawn)
    return pids


def _stop_host(box: Sandbox, host: SandboxHost) -> None:
    """Power off: every process of the host killed (nspawn and the whole tree it booted), its
    network gone. No shutdown is asked for: under qemu one can hang."""
    hdir = _host_dir(box.name, host.name)
    for _ in range(100):
        pids = _host_pids(host, hdir)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    else:
        raise SandboxError(f"{host.name}: processes {pids} do not end")
    (hdir / "nspawn.pid").unlink(missing_ok=True)
    # what nspawn keeps on this machine for a running container, left behind by a kill
    shutil.rmtree(f"/run/systemd/nspawn/propagate/{host.name}", ignore_errors=True)
    with contextlib.suppress(OSError):
        root = os.stat(hdir / "root")
        Path(f"/run/systemd/nspawn/locks/inode-{root.st_dev}:{root.st_ino}").unlink(missing_ok=True)
    _run("ip", "link", "del", host.veth, check=False)
    if host.inner_veth:
        _run("ip", "link", "del", host.inner_veth, check=False)
    _run("ip", "netns", "del", host.netns, check=False)


def _find_host(box: Sandbox, host_name: str) -> SandboxHost:
    host = next((h for h in box.hosts if host_name in (h.name, h.address)), None)
    if host is None:
        raise SandboxError(f"sandbox {box.name} has no host {host_name}")
    return host


def reboot(name: str, host_name: str) -> SandboxHost:
    """A real restart: every process of the host ends, systemd boots again and starts the enabled
    units; the root filesystem (its disk) keeps everything, /run and /tmp start empty."""
    _require_root()
    with _locked(sandbox_root()):
        box = load(name)
        host = _find_host(box, host_name)
        _stop_host(box, host)
        _start_host(box, host)
        _wait_for_sshd(box, host)
        return host


def stop(name: str, host_name: str) -> SandboxHost:
    """Power a host off (a host that fails, for the tests of what a cluster does then): every
    process ends and its address stops answering; its disk is kept for ``start``."""
    _require_root()
    with _locked(sandbox_root()):
        box = load(name)
        host = _find_host(box, host_name)
        _stop_host(box, host)
        return host


def start(name: str, host_name: str) -> SandboxHost:
    """Power a stopped host on again: systemd boots and starts the enabled units; a running host
    is left as it is."""
    _require_root()
    with _locked(sandbox_root()):
        box = load(name)
        host = _find_host(box, host_name)
        if not _host_pids(host, _host_dir(box.name, host.name)):
            _stop_host(box, host)  # what a stopped host may have left: its netns, its veth
            _start_host(box, host)
        _wait_for_sshd(box, host)
        return host


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
        _stop_host(box, host)
    _run("ip", "link", "del", box.bridge, check=False)
    if box.internal_bridge:
        _run("ip", "link", "del", box.internal_bridge, check=False)
    if box.link_rate:
        _run("ip", "link", "del", _uplink_ifb(box), check=False)

    unmount_all(box_dir)
    shutil.rmtree(box_dir, ignore_errors=True)
