"""Delivering each platform's rootfs through a BitTorrent swarm (``--distribution swarm|auto``).

Over rsync every byte of every host's rootfs leaves the controller: a first delivery costs
N x S / B. In a swarm the controller sends each platform's bytes about once and the hosts trade
pieces among themselves. The controller's side is here: each platform's rootfs packed into one
tar (what BitTorrent does not carry travels inside it: modes, owners, symlinks, empty
directories; hard links become separate files, as rsync without -H makes them), a torrent of it
(fixed 1 MiB pieces, private: peers come from the tracker alone), Debian's opentracker
(whitelisted to these torrents, running as nobody) and Debian's aria2c seeding them, all bound
to the controller's address on the hosts' network. The hosts' side is the rootfs role's
tasks/swarm.yml; the role's rsync runs after it as always: it finds every file in place and
sends nothing, and it is the whole delivery of a host whose download failed.

BitTorrent is neither encrypted nor authenticated: the payload crosses the hosts' network in
clear, to whoever knows its info hash (which only the torrent, sent over SSH, carries). Pieces
are checked against the torrent's hashes, so no peer can alter what a host unpacks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sealer.cluster.collection import content_root
from sealer.errors import SwarmError
from sealer.oci.platform import Platform

# auto: a platform goes by swarm when more than this many of its hosts get their first delivery.
# Measured (docs/scale.md): at 100 Mbit/s and a 120-210 MiB rootfs the swarm already wins at 2
# new hosts per platform (4 hosts: 41-44 s against 70.5 s for a parallel rsync) and loses at 1
# (2 hosts: 28.5 s against 21.9 s). Its fixed cost (packing and hashing on the controller,
# aria2c's 1.6 MB compressed to every host, one more Ansible round; some 6 s here) stays as links get
# faster while rsync's cost per host, S/B, shrinks: at 1 GbE a 200 MiB rootfs takes 1.8 s a
# host, so the swarm pays off only from about 6 hosts a platform. 8 keeps auto on rsync wherever
# the swarm would not clearly win; --distribution swarm chooses it below that.
SWARM_THRESHOLD = 8
PIECE_LENGTH_LOG2 = 20  # 1 MiB pieces: small enough that hosts trade pieces early
# what a host needs of its platform's rootfs to join the swarm: Debian's aria2c (bin/aria2c, a
# wrapper) and the libraries a minimal Debian lacks (lib/aria2); sent by rsync first
TOOL = ("bin/aria2c", "lib/aria2")
CONTROLLER_TOOLS = {"tar": "tar", "mktorrent": "mktorrent", "opentracker": "opentracker", "aria2c": "aria2"}
STOP_GRACE = 5.0


@dataclass
class Delivery:
    """How the rootfs went out in a run (``delivery`` in ``sealer run --output json``)."""

    method: str  # "swarm" when any platform went by swarm, else "rsync"
    # wall time of the delivery: the swarm's preparation and the rootfs role, up to the moment
    # every host has its tree (the init script that hosts delivered whole by the swarm run in a
    # task of their own is not delivery; in the rsync's task it is, and is counted)
    seconds: float
    fallback: dict[str, str] = field(default_factory=dict)  # host -> why its swarm download failed
    files_sent: dict[str, int] = field(default_factory=dict)  # host -> files rsync sent it
    whole: list[str] = field(default_factory=list)  # hosts whose whole rootfs came by swarm (no rsync)

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "seconds": round(self.seconds, 3),
            "fallback": sorted(self.fallback),
            "filesSent": dict(self.files_sent),
            "wholeBySwarm": sorted(self.whole),
        }


def plan(
    distribution: str, groups: dict[Platform, list[str]], previous: set[str], behind_bastion: Set[str] = frozenset()
) -> dict[Platform, list[str]]:
    """The hosts that receive through a swarm, per platform: those getting their first delivery
    (not in the cluster's last host list). Re-runs, joins of a few hosts and a cluster's small
    changes stay on rsync, which sends only what differs. Hosts ``behind_bastion`` stay on rsync
    too: the tracker and seeder listen on the controller's network, which they cannot reach."""
    out: dict[Platform, list[str]] = {}
    for platform, members in sorted(groups.items()):
        new = [a for a in members if a not in previous and a not in behind_bastion]
        if new and (distribution == "swarm" or (distribution == "auto" and len(new) > SWARM_THRESHOLD)):
            out[platform] = new
    return out


def missing_tool(rootfs: Path) -> str | None:
    """What of the swarm's tool the platform's rootfs lacks (None: it has it all)."""
    for rel in TOOL:
        if not (rootfs / rel).exists():
            return rel
    return None


def controller_address(host: str) -> str:
    """The controller's own address on the way to ``host``: where the hosts reach its tracker
    and seeder (no packet is sent: a UDP socket is only routed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
        except OSError as err:
            raise SwarmError(f"{host}: no route from the controller for the swarm: {err.strerror}") from err
        return str(s.getsockname()[0])


def rootfs_excludes() -> list[str]:
    """The rootfs role's rsync excludes as tar's: the payload holds exactly what rsync would send."""
    defaults = yaml.safe_load((content_root() / "roles" / "sealer_rootfs" / "defaults" / "main.yml").read_text())
    anchored, anywhere = [], []
    for pattern in defaults.get("sealer_rootfs_exclude") or []:
        name = str(pattern).rstrip("/")
        if name.startswith("/"):
            anchored.append(f"--exclude=.{name}")
        else:
            anywhere.append(f"--exclude={name}")
    return ["--anchored", *anchored, "--no-anchored", *anywhere]


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _run(args: list[str], what: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise SwarmError(f"{what}: {detail[0]}")
    return proc.stdout


def _wait_listening(proc: subprocess.Popen[bytes], address: str, port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise SwarmError(f"the swarm's {what} did not start: {tail[0]}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
            return
        time.sleep(0.1)
    raise SwarmError(f"the swarm's {what} does not listen on {address}:{port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_leftovers(workdir: Path) -> None:
    """The tracker and seeder of a run that was killed, found by the pids it recorded and
    stopped only when the process still is theirs (its arguments name ``workdir``)."""
    pids = workdir / "pids"
    if not pids.exists():
        return
    for line in pids.read_text().split():
        with contextlib.suppress(OSError, ValueError):
            cmdline = Path(f"/proc/{int(line)}/cmdline").read_bytes()
            if str(workdir).encode() in cmdline:
                os.kill(int(line), signal.SIGKILL)


def discard_swarm(workdir: Path) -> None:
    """The tracker, seeder and payloads a killed run left, gone."""
    if workdir.exists():
        stop_leftovers(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Swarm:
    tracker: str
    torrents: dict[Platform, Path]


@contextlib.contextmanager
def running_swarm(workdir: Path, rootfs: dict[Platform, Path], reach: str) -> Iterator[Swarm]:
    """Pack, make the torrents, start the tracker and the seeder; stop them and remove every
    file when the context ends. ``reach``: one host's address, to find the controller's own."""
    missing = [f"{tool} (Debian's {pkg})" for tool, pkg in CONTROLLER_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise SwarmError(f"the swarm needs on the controller: {', '.join(missing)}; or use --distribution rsync")
    address = controller_address(reach)
    discard_swarm(workdir)
    workdir.mkdir(mode=0o700, parents=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        tracker_port, seeder_port = _free_port(address), _free_port(address)
        host = f"[{address}]" if ":" in address else address
        announce = f"http://{host}:{tracker_port}/announce"
        torrents: dict[Platform, Path] = {}
        hashes = []
        for platform, root in sorted(rootfs.items()):
            payload = workdir / f"{platform.group_name}.tar"
            _run(["tar", "--create", f"--file={payload}", f"--directory={root}", "--format=posix",
                  "--hard-dereference", "--sort=name", *rootfs_excludes(), "."],
                 f"packing the {platform} rootfs")  # fmt: skip
            torrent = payload.with_suffix(".torrent")
            _run(["mktorrent", "-p", "-d", "-l", str(PIECE_LENGTH_LOG2), "-a", announce, "-o", str(torrent),
                  str(payload)], f"making the {platform} torrent")  # fmt: skip
            shown = _run(["aria2c", "--show-files", str(torrent)], f"reading the {platform} torrent")
            info_hash = next((ln[10:].strip() for ln in shown.splitlines() if ln.startswith("Info Hash:")), "")
            if len(info_hash) != 40:
                raise SwarmError(f"the {platform} torrent has no info hash aria2c can read")
            hashes.append(info_hash)
            torrents[platform] = torrent
        # opentracker chroots to its directory and drops to nobody: the whitelist is read there
        tracker_dir = workdir / "tracker"
        tracker_dir.mkdir(mode=0o755)
        (tracker_dir / "whitelist").write_text("".join(h + "\n" for h in hashes))
        os.chmod(tracker_dir / "whitelist", 0o644)
        tracker_log, seeder_log = workdir / "tracker.log", workdir / "seeder.log"
        with open(tracker_log, "wb") as log:
            procs.append(subprocess.Popen(
                ["opentracker", "-i", address, "-p", str(tracker_port), "-d", str(tracker_dir), "-u", "nobody",
                 "-w", "whitelist"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            ))  # fmt: skip
        _record(workdir, procs)
        _wait_listening(procs[-1], address, tracker_port, "tracker (opentracker)", tracker_log)
        with open(seeder_log, "wb") as log:
            procs.append(subprocess.Popen(
                ["aria2c", f"--dir={workdir}", "--check-integrity=true", "--seed-ratio=0.0",
                 f"--listen-port={seeder_port}", f"--interface={address}", "--enable-dht=false",
                 "--enable-dht6=false", "--bt-enable-lpd=false", f"--stop-with-process={os.getpid()}",
                 f"--max-concurrent-downloads={len(torrents)}", "--console-log-level=warn",
                 "--summary-interval=0", *(str(t) for t in torrents.values())],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            ))  # fmt: skip
        _record(workdir, procs)
        _wait_listening(procs[-1], address, seeder_port, "seeder (aria2c)", seeder_log)
        yield Swarm(announce, torrents)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _record(workdir: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    (workdir / "pids").write_text("".join(f"{p.pid}\n" for p in procs))
