"""Scale benchmark: the first delivery of an image as the hosts grow (2, 4, 8, 16, 32; every
other host arm64 through qemu), on a sandbox whose links are shaped with tc (``--link-rate``:
each host behind a RATE NIC, the controller behind one RATE uplink).

The image is the example base plus a generated context of incompressible bytes, about
PAYLOAD MiB per platform (two thirds shared by both platforms, a third per platform). For each
N, after ``sync``:
  - sealer: ``sealer run --output json`` onto N hosts (a first run: a new cluster).
    Its delivery time is the JSON's ``delivery.seconds`` when sealer reports it (swarm or rsync,
    named: from the swarm's packing to the last host's tree in place); without it the whole
    run's wall time, marked as such. Beside it, the time of the init scripts the swarm's hosts
    run after their delivery (read from the run's Ansible events), which is not delivery, and
    per platform the slowest swarm host's own download (aria2c's time, unpacking aside);
  - baseline, after it: a parallel ``rsync -a`` over ssh from the controller of each platform's
    rootfs (the very tree sealer mounts) to the same hosts, as bench/run.py does;
  - the floor: the controller must send each platform's bytes once, S_amd64/B + S_arm64/B.
Every host's rootfs is then compared with its rsync baseline (contents, modes, owners,
symlinks, hard links, empty directories: ``rsync -n --checksum --itemize-changes`` on the host).

Targets (issue 18): sealer's delivery at 32 hosts at most 3x the floor and at most 1.6x its own
time at 4 hosts, while the parallel rsync grows with N.

    python bench/scale.py [--hosts 2,4,8,16,32] [--payload-mib 96] [--link-rate 100mbit]

Needs root (the sandbox) and the example base (examples/prepare.sh is run first).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SEALER = [sys.executable, "-m", "sealer"]
IMAGE = "bench/scale:v1"
SANDBOX = "bscale"
BASELINE_DIR = "/var/lib/bench-rsync"
EXCLUDE = "--exclude=/registry/"  # served from the registry host, not delivered (roles/sealer_rootfs)


def sealer(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([*SEALER, *args], env=env, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sealer {' '.join(args[:2])} failed:\n{proc.stderr}")
    return proc.stdout


def write_random(path: Path, mib: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block[:7] + os.urandom(16) + block[23:])  # distinct blocks, cheap to make


def make_context(ctx: Path, mib: int) -> None:
    """On the example base: two thirds of the payload shared by both platforms, a third each."""
    shared = mib * 2 // 3
    write_random(ctx / "common" / "data" / "shared.bin", shared)
    for arch in ("amd64", "arm64"):
        write_random(ctx / arch / "bin" / "payload", mib - shared)
    (ctx / "Kubefile").write_text("FROM kubernetes:v1.19.8\nCOPY common/. .\nCOPY ${ARCH}/. .\n")


def tree_bytes(tree: Path) -> int:
    """What rsync sends of a rootfs: every regular file outside registry/ (hard links once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, dirs, files in os.walk(tree):
        if Path(top) == tree and "registry" in dirs:
            dirs.remove("registry")
        for name in files:
            st = os.lstat(os.path.join(top, name))
            if (st.st_dev, st.st_ino) not in seen and not os.path.islink(os.path.join(top, name)):
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def ssh_args(key: str) -> list[str]:
    return ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR"]  # fmt: skip


def on_host(key: str, address: str, command: str) -> str:
    return subprocess.run([*ssh_args(key), f"root@{address}", command], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def rsync_baseline(hosts: list[dict[str, str]], trees: dict[str, Path], key: str) -> None:
    """Every host's rsync at once; one whose ssh session breaks (seen once in a 32-host run: the
    sender's pipe broken a minute in) is named and run again, its time counted in the baseline."""
    rsh = shlex.join(ssh_args(key))

    def start(h: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["rsync", "-aH", "--delete", EXCLUDE, "-e", rsh, f"{trees[h['platform']]}/",
             f"root@{h['address']}:{BASELINE_DIR}/"], stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    procs = [(h, start(h)) for h in hosts]
    failed = []
    for h, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            print(f"... baseline: rsync to {h['address']} failed ({err.strip().splitlines()[-1:]}), run again",
                  flush=True)  # fmt: skip
            failed.append(h)
    if any(start(h).wait() != 0 for h in failed):
        raise SystemExit("rsync baseline failed")


def distribution_args(env: dict[str, str], wanted: str) -> list[str]:
    """--distribution only when this sealer has it (the swarm delivery, issue 18)."""
    helptext = subprocess.run([*SEALER, "run", "--help"], env=env, capture_output=True, text=True, check=False).stdout
    return ["--distribution", wanted] if wanted and "--distribution" in helptext else []


def sealer_run(env: dict[str, str], hosts: list[dict[str, str]], key: str, cluster: str, extra: list[str]) -> dict:  # type: ignore[type-arg]
    nodes = ["-n", ",".join(h["address"] for h in hosts[1:])] if len(hosts) > 1 else []
    start = time.perf_counter()
    out = sealer(env, "run", IMAGE, "-m", hosts[0]["address"], *nodes, "--pk", key, "--cluster", cluster,
                 *extra, "--output", "json")  # fmt: skip
    wall = time.perf_counter() - start
    result = json.loads(out)
    result["wall"] = wall
    return result


def run_events(run_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    """The run's Ansible events (ansible-runner's job_events), each read once."""
    return [json.loads(p.read_text()) for p in (run_dir / "artifacts").glob("*/job_events/*.json")]


def _stamp(event: dict) -> float:  # type: ignore[type-arg]
    return dt.datetime.fromisoformat(event["created"]).timestamp()


def _kind(event: dict) -> str:  # type: ignore[type-arg]
    """The kind of the report a host returned in this event (sealer/cluster/results.py), if any."""
    report = ((event.get("event_data") or {}).get("res") or {}).get("sealer")
    return str(report.get("kind", "")) if isinstance(report, dict) else ""


def init_task_seconds(events: list[dict]) -> float | None:  # type: ignore[type-arg]
    """The swarm's init task's wall time: from the last swarm download's report to the last host's
    init report (Ansible events)."""
    downloads = [_stamp(e) for e in events if _kind(e) == "swarm"]
    inits = [_stamp(e) for e in events if _kind(e) == "initialise"]
    return max(inits) - max(downloads) if inits and downloads else None


def task_timeline(events: list[dict]) -> list[tuple[float, float, str]]:  # type: ignore[type-arg]
    """Each task's first event and last event, seconds from the run's first event (for exploring)."""
    spans: dict[str, list[float]] = {}
    for event in events:
        task = str((event.get("event_data") or {}).get("task", ""))
        if task:
            t = _stamp(event)
            span = spans.setdefault(task, [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
    zero = min((a for a, _ in spans.values()), default=0.0)
    return sorted((a - zero, b - zero, task) for task, (a, b) in spans.items())


def swarm_hosts(events: list[dict]) -> list[tuple[float, float, str]]:  # type: ignore[type-arg]
    """Each host's end of the swarm's download task (seconds from the run's first event), its own
    download time (aria2c's, from the host's report) and its name (for exploring)."""
    zero = min((_stamp(e) for e in events), default=0.0)
    rows: list[tuple[float, float, str]] = []
    for event in events:
        data = event.get("event_data") or {}
        if _kind(event) == "swarm" and event["event"] == "runner_on_ok":
            report = data["res"]["sealer"]
            own = float(report.get("seconds", -1)) if not report.get("failed") else -1.0
            rows.append((_stamp(event) - zero, own, str(data.get("host"))))
    return sorted(rows)


def slowest_download(events: list[dict], hosts: list[dict[str, str]]) -> str:  # type: ignore[type-arg]
    """Per platform, the slowest swarm host's own download (aria2c's, unpacking aside): the
    transfer's share of the delivery time, "-" where no host of it went through the swarm."""
    platform = {h["address"]: h["platform"] for h in hosts}
    slowest: dict[str, float] = {}
    for _, own, host in swarm_hosts(events):
        if own >= 0:
            slowest[platform.get(host, "?")] = max(own, slowest.get(platform.get(host, "?"), 0.0))
    return "/".join(f"{slowest[p]:.0f}" if p in slowest else "-" for p in sorted(set(platform.values())))


def trees_identical(hosts: list[dict[str, str]], key: str, cluster: str) -> list[str]:
    """Hosts whose rootfs differs from their rsync baseline in anything rsync -a carries (times
    aside: a delivery need not keep them); checksums, not sizes and times."""
    rootfs = f"/var/lib/sealer/data/{cluster}/rootfs/"
    check = f"rsync -rlpgoDH --checksum --dry-run --itemize-changes --delete {EXCLUDE} {BASELINE_DIR}/ {rootfs}"

    def differs(h: dict[str, str]) -> str:
        out = on_host(key, h["address"], check).strip()
        return f"{h['address']}: {out.splitlines()[:3]}" if out else ""

    with ThreadPoolExecutor(8) as pool:
        return [d for d in pool.map(differs, hosts) if d]


def timed(fn: object, *args: object) -> tuple[float, object]:
    os.sync()  # each phase starts on a settled machine: the hosts share this machine's disk
    start = time.perf_counter()
    value = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", default="2,4,8,16,32", help="host counts, comma-separated")
    parser.add_argument("--payload-mib", type=int, default=96, help="incompressible MiB per platform")
    parser.add_argument("--link-rate", default="100mbit", help="tc rate of every link and the controller's uplink")
    parser.add_argument("--distribution", default="swarm", help="passed to sealer run when it has --distribution")
    parser.add_argument("--all-amd64", action="store_true",
                        help="every host amd64: no host emulated, to tell the swarm's cost from qemu's")  # fmt: skip
    parser.add_argument("--no-baseline", action="store_true",
                        help="sealer alone, trees unchecked: for exploring, not for the targets")  # fmt: skip
    opts = parser.parse_args()
    counts = [int(n) for n in opts.hosts.split(",")]
    if os.geteuid() != 0:
        raise SystemExit("bench/scale.py needs root: it makes a sandbox of hosts")
    from sealer.sandbox.lifecycle import parse_link_rate

    bandwidth = parse_link_rate(opts.link_rate) / 8  # bytes per second
    subprocess.run(["bash", str(ROOT / "examples" / "prepare.sh")], check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="sealer-bench-scale-", dir="/var/tmp"))
    env = {**os.environ, "SEALER_ROOT": str(work / "store")}
    archs = ",".join("amd64" if i % 2 == 0 or opts.all_amd64 else "arm64" for i in range(max(counts)))
    extra = distribution_args(env, opts.distribution)
    rows: list[dict[str, object]] = []
    try:
        sealer(env, "build", "--platform", "linux/amd64,linux/arm64", "-t", "kubernetes:v1.19.8",
               str(ROOT / "examples" / "kubernetes-base"))  # fmt: skip
        make_context(work / "ctx", opts.payload_mib)
        sealer(env, "build", "--platform", "linux/amd64,linux/arm64", "-t", IMAGE, str(work / "ctx"))
        boot = time.perf_counter()
        sealer(env, "sandbox", "up", SANDBOX, "--hosts", archs, "--link-rate", opts.link_rate)
        boot = time.perf_counter() - boot
        listed = [r for r in json.loads(sealer(env, "sandbox", "ls", "--output", "json")) if r["sandbox"] == SANDBOX]
        key = listed[0]["key"]
        hosts = [{"address": r["address"], "platform": r["platform"]} for r in listed]

        from sealer.oci.platform import Platform
        from sealer.oci.reference import Reference
        from sealer.store.image import get_image
        from sealer.store.layout import Store
        from sealer.store.mount import mounted_rootfs

        store = Store.open(work / "store")
        image = get_image(store, Reference.parse(IMAGE))
        with contextlib.ExitStack() as stack:
            trees = {
                str(p): stack.enter_context(mounted_rootfs(store, image.for_platform(p), work / "mnt" / p.group_name))
                for p in (Platform.parse("linux/amd64"), Platform.parse("linux/arm64/v8"))
            }
            size = {p: tree_bytes(t) for p, t in trees.items()}
            # only the platforms some host has: all of them unless --all-amd64
            floor = sum(s for p, s in size.items() if any(h["platform"] == p for h in hosts)) / bandwidth
            for n in counts:
                some = hosts[:n]
                cluster = f"scale{n}"
                # sealer first: the hosts share this machine's page cache, so a baseline made before
                # would hold N copies of the rootfs in memory through sealer's run (a 32-host run
                # then reclaimed memory the hosts' own machines would not share)
                _, result = timed(sealer_run, env, some, key, cluster, extra)
                base, _ = timed(rsync_baseline, some, trees, key) if not opts.no_baseline else (float("nan"), None)
                assert isinstance(result, dict)
                delivery = result.get("delivery")
                differs = None if opts.no_baseline else trees_identical(some, key, cluster)
                events = run_events(Path(result["runDir"]))
                rows.append({
                    "n": n, "rsync": base, "wall": result["wall"], "differs": differs,
                    "method": delivery["method"] if delivery else "whole run",
                    "delivery": delivery["seconds"] if delivery else result["wall"],
                    "fallback": delivery.get("fallback", []) if delivery else [],
                    "task": init_task_seconds(events),
                    "download": slowest_download(events, some),
                })  # fmt: skip
                if opts.no_baseline:
                    for a, b, name in task_timeline(events):
                        if b - a >= 1.0:
                            print(f"      {a:6.1f} {b:6.1f} {b - a:6.1f} s  {name[:90]}")
                    ends = swarm_hosts(events)
                    print("      swarm hosts (task end s, own download s): "
                          + ", ".join(f"{host} {end:.1f}/{own:.0f}" for end, own, host in ends))  # fmt: skip
                for h in some:
                    on_host(key, h["address"], f"rm -rf {BASELINE_DIR}")
                sealer(env, "delete", "--all", "--cluster", cluster)
                task = rows[-1]["task"]
                print(
                    f"... {n} hosts: rsync {base:.1f} s, sealer {rows[-1]['delivery']:.1f} s ({rows[-1]['method']}),"
                    f" then init scripts {task if task is None else round(task, 1)} s,"
                    f" trees {'unchecked' if differs is None else 'DIFFER' if differs else 'identical'}",
                    flush=True,
                )

        mib = {p: s / 2**20 for p, s in size.items()}
        print("rootfs per platform: " + ", ".join(f"{p} {m:.0f} MiB" for p, m in mib.items())
              + f"; links {opts.link_rate}; sandbox of {len(hosts)} hosts booted in {boot:.0f} s")  # fmt: skip
        each = ", ".join(f"{p} {s / bandwidth:.1f} s" for p, s in size.items())
        print(f"floor (the controller sends each platform once): {each}; the hosts' platforms {floor:.1f} s")
        four = next((r for r in rows if r["n"] == 4), None)
        print(f"{'hosts':>5} {'rsync s':>8} {'/floor':>6}   {'sealer s':>8} {'method':<10} {'/floor':>6} "
              f"{'/rsync':>6} {'/4hosts':>7}   {'then init s':>11} {'run s':>6} {'own dl s':>8} "
              f"{'trees':<9}")  # fmt: skip
        for r in rows:
            d, b = float(r["delivery"]), float(r["rsync"])  # type: ignore[arg-type]
            vs4 = f"{d / float(four['delivery']):.2f}x" if four else "-"  # type: ignore[arg-type]
            task = f"{r['task']:.1f}" if r["task"] is not None else "-"
            same = "unchecked" if r["differs"] is None else f"DIFFER {r['differs']}" if r["differs"] else "identical"
            print(f"{r['n']:>5} {b:8.1f} {b / floor:5.2f}x   {d:8.1f} {r['method']:<10} {d / floor:5.2f}x "
                  f"{d / b:5.2f}x {vs4:>7}   {task:>11} {float(r['wall']):6.1f} {r['download']:>8} {same}")  # fmt: skip
            if r["fallback"]:
                print(f"      fell back to rsync: {r['fallback']}")
        platforms = "/".join(sorted({h["platform"] for h in hosts}))
        print(f"own dl s: the slowest swarm host's own download per platform ({platforms}), as its aria2c took it,"
              " before unpacking")  # fmt: skip
        print("targets (issue 18): sealer at 32 hosts <= 3x floor and <= 1.6x its 4-host time; rsync grows with N")
        if any(r["differs"] for r in rows):
            raise SystemExit("some host's tree differs from its rsync baseline")
    finally:
        subprocess.run([*SEALER, "sandbox", "down", SANDBOX], env=env, check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
