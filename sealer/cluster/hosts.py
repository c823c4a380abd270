"""Reaching hosts over SSH (paramiko): host keys trusted on first use, platforms detected.

Host keys are remembered per cluster in an OpenSSH known_hosts file, which the Ansible run
then uses with StrictHostKeyChecking=yes: a key that changes between runs is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko

from sealer._fs import atomic_write
from sealer.cluster.clusterfile import Bastion, Host
from sealer.cluster.collection import shared_defaults
from sealer.errors import HostError, HostsError, SealerError, SudoPasswordNeeded
from sealer.names import is_dns_label
from sealer.oci.platform import Platform

# paramiko logs a host's failed handshake with a traceback from its transport thread; sealer
# says what failed per host itself, in one line, so paramiko's own records go nowhere
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

CONNECT_TIMEOUT = 10.0
# one process (uname) besides the shell: the rest are shell builtins, because on a small or
# emulated host every process started costs
DETECT_COMMAND = (
    'uname -m || exit 1; read -r h < /proc/sys/kernel/hostname; echo "$h"; '
    'while read -r l; do case "$l" in \'CPU architecture\'*) echo "$l"; break;; esac; done'
    " < /proc/cpuinfo 2>/dev/null; exit 0"
)
# A host belongs to one cluster: the preflight role records its name in this file of sealer's data
# root before it changes anything, the reset role removes it. Detection reads it (a builtin).
OWNER_RECORD = ".cluster"
_OWNER_LINE = "sealer-cluster="


_REACH_LINE = "sealer-reach="


def detect_command(host: Host, reach: Sequence[str] = ()) -> str:
    """DETECT_COMMAND, and the cluster the host's record names (a line ``sealer-cluster=NAME``);
    for each address of ``reach``, whether the host has a route to it (``sealer-reach=ADDR``, and
    ip's words when it has none; nothing where ip is missing)."""
    root = str(host.vars.get("sealer_data_root") or shared_defaults()["sealer_data_root"])
    record = shlex.quote(f"{root}/{OWNER_RECORD}")
    read = f'c=; [ -r {record} ] && read -r c < {record}; [ -n "$c" ] && echo "{_OWNER_LINE}$c"; '
    if reach:
        read += (
            f"if command -v ip >/dev/null 2>&1; then for a in {' '.join(shlex.quote(a) for a in reach)}; do "
            f'r=$(ip route get "$a" 2>&1) && echo "{_REACH_LINE}$a" || echo "{_REACH_LINE}$a $r"; done; fi; '
        )
    return DETECT_COMMAND.removesuffix("exit 0") + read + "exit 0"


# a login user other than root changes a host through sudo: it must have it, without a password
# or with the one sealer was given
# "no-rights": sudo's -v (no command) says the user has no sudoers entry at all, without asking
# for a password, where -n true says only that a password is required
SUDO_PROBE = (
    "command -v sudo >/dev/null 2>&1 || { echo no-sudo; exit 0; }; sudo -n true 2>/dev/null && echo sudo"
    " || { LC_ALL=C sudo -n -v 2>&1 | grep -q 'may not run sudo' && echo no-rights || echo ask; }"
)
SUDO_WITH_PASSWORD = "sudo -k -S -p '' true"


@dataclass(frozen=True)
class HostFacts:
    address: str
    platform: Platform
    hostname: str
    sudo: str = ""  # how the login user becomes root: "" (it is root), "nopasswd" or "password"
    cluster: str = ""  # the cluster the host's record says it belongs to ("": none)
    # the addresses the host has no route to (of those it was asked about), with ip's words
    unreachable: tuple[tuple[str, str], ...] = ()


class KnownHosts:
    """A cluster's known_hosts: trust on first use, or refuse unknown keys when strict."""

    def __init__(self, path: Path, strict: bool = False) -> None:
        self.path = path
        self.strict = strict
        self.keys = paramiko.HostKeys()
        if path.exists():
            self.keys.load(str(path))
        self._lock = threading.Lock()

    def entry_name(self, host: Host) -> str:
        return self._entry(host.address, host.ssh.port)

    @staticmethod
    def _entry(address: str, port: int) -> str:
        return address if port == 22 else f"[{address}]:{port}"

    def check(self, host: Host, key: paramiko.PKey) -> None:
        self.check_key(host.address, host.ssh.port, key, host.address)

    def check_key(self, address: str, port: int, key: paramiko.PKey, who: str) -> None:
        """``key`` is the one known for ``address``:``port`` (or the first seen); ``who`` names
        the host in an error."""
        name = self._entry(address, port)
        with self._lock:
            known = self.keys.lookup(name)
            if known is not None and key.get_name() in known:
                if known[key.get_name()] != key:
                    raise HostError(
                        who,
                        f"host key changed ({key.get_name()} {key.fingerprint}); if the host was reinstalled, "
                        f"remove its line from {self.path}",
                    )
                return
            if known is not None or self.strict:
                raise HostError(who, f"unknown host key {key.get_name()} {key.fingerprint} (strict host keys)")
            self.keys.add(name, key.get_name(), key)

    def save(self) -> None:
        lines = [
            f"{name} {key_type} {key.get_base64()}\n"
            for name in sorted(self.keys.keys())
            for key_type, key in sorted(self.keys[name].items())
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, "".join(lines).encode(), mode=0o600)


class _JumpedTransport(paramiko.Transport):
    """A host's transport carried by a channel of its bastion's: closing it closes both."""

    def __init__(self, sock: paramiko.Channel, jump: paramiko.Transport) -> None:
        super().__init__(sock)
        self._jump = jump

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._jump.close()


def bastion_name(bastion: Bastion) -> str:
    return f"bastion {bastion}"


def connect_bastion(bastion: Bastion, known: KnownHosts, timeout: float = CONNECT_TIMEOUT) -> paramiko.Transport:
    """An authenticated transport to a bastion (by key only), its host key checked as a host's."""
    who = bastion_name(bastion)
    if not bastion.pk:
        raise HostError(who, "no SSH key for the bastion (give --pk, or pk in spec.ssh.bastion)")
    try:
        sock = socket.create_connection((bastion.address, bastion.port), timeout=timeout)
    except OSError as err:
        raise HostError(who, f"unreachable: {err.strerror or err}") from err
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        known.check_key(bastion.address, bastion.port, transport.get_remote_server_key(), who)
        try:
            transport.auth_publickey(bastion.user, _load_key(bastion.pk, None, who))
        except paramiko.AuthenticationException as err:
            raise HostError(who, f"authentication failed for user {bastion.user}") from err
    except HostError:
        transport.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as err:
        transport.close()
        raise HostError(who, f"ssh failed: {err}") from err
    return transport


def _open_socket(
    host: Host, known: KnownHosts, timeout: float
) -> tuple[socket.socket | paramiko.Channel, paramiko.Transport | None]:
    """A stream to the host's sshd: straight, or a ``direct-tcpip`` channel of its bastion's."""
    if host.ssh.bastion is None:
        try:
            return socket.create_connection((host.address, host.ssh.port), timeout=timeout), None
        except OSError as err:
            raise HostError(host.address, f"unreachable on port {host.ssh.port}: {err.strerror or err}") from err
    jump = connect_bastion(host.ssh.bastion, known, timeout)
    try:
        channel = jump.open_channel("direct-tcpip", (host.address, host.ssh.port), ("127.0.0.1", 0), timeout=timeout)
    except (paramiko.SSHException, OSError, EOFError) as err:
        jump.close()
        said = getattr(err, "text", None) or str(err) or type(err).__name__
        raise HostError(
            host.address, f"unreachable on port {host.ssh.port} through {bastion_name(host.ssh.bastion)}: {said}"
        ) from err
    return channel, jump


def connect(host: Host, known: KnownHosts, timeout: float = CONNECT_TIMEOUT) -> paramiko.Transport:
    """An authenticated client, after the host key passed ``known``; through the host's
    bastion when it has one."""
    sock, jump = _open_socket(host, known, timeout)
    transport = paramiko.Transport(sock) if jump is None else _JumpedTransport(sock, jump)  # type: ignore[arg-type]
    try:
        transport.start_client(timeout=timeout)
        known.check(host, transport.get_remote_server_key())
        _authenticate(transport, host)
    except HostError:
        transport.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as err:
        transport.close()
        raise HostError(host.address, f"ssh failed: {err}") from err
    return transport


def _authenticate(transport: paramiko.Transport, host: Host) -> None:
    ssh = host.ssh
    try:
        if ssh.pk:
            key = _load_key(ssh.pk, ssh.pk_password, host.address)
            transport.auth_publickey(ssh.user, key)
        elif ssh.password is not None:
            transport.auth_password(ssh.user, ssh.password)
        else:
            raise HostError(host.address, "no SSH key or password given (use --pk or a password option)")
    except paramiko.AuthenticationException as err:
        raise HostError(host.address, f"authentication failed for user {ssh.user}") from err


def _load_key(path: str, password: str | None, address: str) -> paramiko.PKey:
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(path, password=password)
        except (paramiko.SSHException, ValueError) as err:
            errors.append(str(err))
        except OSError as err:
            raise HostError(address, f"cannot read SSH key {path}: {err.strerror}") from err
    raise HostError(address, f"cannot load SSH key {path}: {errors[-1]}")


def run(
    transport: paramiko.Transport, command: str, timeout: float = 60, stdin: str | None = None
) -> tuple[int, str, str]:
    channel = transport.open_session(timeout=timeout)
    try:
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin is not None:  # a secret goes on the stream, never in the command
            channel.sendall(stdin.encode())
            channel.shutdown_write()
        out = channel.makefile("rb").read().decode("utf-8", "replace")
        err = channel.makefile_stderr("rb").read().decode("utf-8", "replace")
        return channel.recv_exit_status(), out, err
    finally:
        channel.close()


def detect_one(
    host: Host, known: KnownHosts, become_password: str | None = None, reach: Sequence[str] = ()
) -> HostFacts:
    transport = connect(host, known)
    try:
        code, out, err = run(transport, detect_command(host, reach))
        facts = parse_detection(host.address, code, out, err)
        if host.ssh.user != "root":
            facts = dataclasses.replace(facts, sudo=check_sudo(transport, host, become_password))
    finally:
        transport.close()
    return facts


def check_sudo(transport: paramiko.Transport, host: Host, become_password: str | None) -> str:
    """How the login user becomes root: "nopasswd" or "password"; a HostError when it cannot."""
    user = host.ssh.user
    code, out, err = run(transport, SUDO_PROBE)
    answer = out.strip()
    if code != 0 or answer == "no-sudo":
        raise HostError(host.address, f"user {user} is not root and the host has no sudo")
    if answer == "sudo":
        return "nopasswd"
    if answer == "no-rights":  # no password helps
        raise HostError(host.address, f"user {user} cannot become root with sudo: sudo says {user} may not run sudo")
    if become_password is None:
        raise SudoPasswordNeeded(host.address, f"sudo asks user {user} for a password: set SEALER_BECOME_PASSWORD")
    code, _, err = run(transport, SUDO_WITH_PASSWORD, stdin=become_password + "\n")
    if code != 0:
        said = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
        raise HostError(host.address, f"user {user} cannot become root with sudo: {said}")
    return "password"


def check_owners(cluster: str, facts: dict[str, HostFacts]) -> None:
    """Every host is free or already the named cluster's; a HostsError naming each host whose
    record names another cluster (one host belongs to one cluster: its registry port, /etc/hosts
    lines and container runtime are shared)."""
    errors = [
        HostError(address, f"belongs to cluster {fact.cluster if is_dns_label(fact.cluster) else repr(fact.cluster)}"
                  f" (its {OWNER_RECORD} record says so); delete it from that cluster first")
        for address, fact in sorted(facts.items())
        if fact.cluster and fact.cluster != cluster
    ]  # fmt: skip
    if errors:
        raise HostsError(errors)


def check_reach(facts: dict[str, HostFacts], what: Mapping[str, str]) -> None:
    """Every host has a route to each address it was asked about; a HostsError naming each host,
    the address, what sealer writes it for (``what``: address to its use) and what ip said."""
    errors = [
        HostError(address, f"cannot reach {target}, {what.get(target, 'an address sealer writes for it')}: {said}")
        for address, fact in sorted(facts.items())
        for target, said in fact.unreachable
    ]
    if errors:
        raise HostsError(errors)


def parse_detection(address: str, code: int, out: str, err: str) -> HostFacts:
    """What DETECT_COMMAND printed: ``uname -m``, the hostname, and for arm the CPU architecture
    line; and the cluster the host's record names (detect_command)."""
    lines = [line for line in out.splitlines() if not line.startswith((_OWNER_LINE, _REACH_LINE))]
    owner = next((line.removeprefix(_OWNER_LINE) for line in out.splitlines() if line.startswith(_OWNER_LINE)), "")
    reached = [
        line.removeprefix(_REACH_LINE).partition(" ") for line in out.splitlines() if line.startswith(_REACH_LINE)
    ]
    unreachable = tuple((address, said.strip() or "no route") for address, sep, said in reached if sep)
    if code != 0 or len(lines) < 2 or not lines[0].strip():
        raise HostError(address, f"cannot read the machine type: {err.strip() or out.strip() or f'exit {code}'}")
    try:
        platform = Platform.from_uname(lines[0], "\n".join(lines[2:]))
    except SealerError as err_:
        raise HostError(address, str(err_)) from err_
    return HostFacts(address, platform, lines[1].strip(), cluster=owner.strip(), unreachable=unreachable)


def authorize_key(host: Host, known: KnownHosts, public_key: str) -> None:
    """Add ``public_key`` to the login user's authorized_keys (once), logging in as ``host`` says."""
    transport = connect(host, known)
    try:
        line = public_key.strip().replace("'", "")
        code, _, err = run(
            transport,
            "umask 077 && mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys && "
            f"(grep -qxF '{line}' ~/.ssh/authorized_keys || echo '{line}' >> ~/.ssh/authorized_keys)",
        )
    finally:
        transport.close()
    if code != 0:
        raise HostError(host.address, f"cannot install the cluster's SSH key: {err.strip() or f'exit {code}'}")


def on_every_host(hosts: list[Host], action: Callable[[Host], None]) -> None:
    """``action`` on every host in parallel; every failure is reported, each naming its host."""
    errors: list[HostError] = []
    with ThreadPoolExecutor(max_workers=min(32, max(len(hosts), 1))) as pool:
        futures = {pool.submit(action, h): h for h in hosts}
        for future, host in futures.items():
            try:
                future.result()
            except HostError as err:
                errors.append(err)
            except Exception as err:  # one host's surprise must not hide the others' results
                errors.append(HostError(host.address, f"{type(err).__name__}: {err}"))
    if errors:
        raise HostsError(sorted(errors, key=lambda e: e.host))


def check_bastions(hosts: list[Host], known: KnownHosts) -> None:
    """Each bastion the hosts are behind answers and lets sealer in: a bastion that does not is
    one error naming it, not one per host behind it."""
    bastions = list(dict.fromkeys(h.ssh.bastion for h in hosts if h.ssh.bastion is not None))
    errors: list[HostError] = []
    for bastion in bastions:
        try:
            connect_bastion(bastion, known).close()
        except HostError as err:
            errors.append(err)
    if errors:
        raise HostsError(errors)


def detect(
    hosts: list[Host], known: KnownHosts, become_password: str | None = None,
    reach: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, HostFacts]:  # fmt: skip
    """Every host's platform (and, for a login user other than root, its sudo), in parallel; any
    failure raises HostsError naming each host (or the bastion they are behind). ``reach``: per
    host, the addresses whose route it is asked about (HostFacts.unreachable)."""
    check_bastions(hosts, known)
    results: dict[str, HostFacts] = {}

    def one(host: Host) -> None:
        results[host.address] = detect_one(host, known, become_password, (reach or {}).get(host.address, ()))

    on_every_host(hosts, one)
    known.save()
    return results
