"""Run benchmark: ``sealer run`` onto a sandbox of 8 hosts (4 amd64, 4 arm64 through qemu) of an
image whose rootfs is about 1 GiB per platform, beside this run's baseline doing the same
delivery by hand: parallel ``rsync -a --delete`` over ssh of each platform's rootfs (the very
tree sealer mounts) to each of its hosts. Then the unchanged re-run, and the first run's time
as the hosts grow 1, 2, 4, 8. Prints ratios.

Targets (issue 5): first run at most 1.5x the baseline; re-run under 10% of the first run;
time growing well below linearly with the hosts.

    python bench/run.py [--mib 1024] [--hosts 8]

Needs root (the sandbox), and the example base (examples/prepare.sh is run first).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SEALER = [sys.executable, "-m", "sealer"]
IMAGE = "bench/run:v1"
SANDBOX = "bench"


def sealer(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([*SEALER, *args], env=env, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sealer {' '.join(args[:2])} failed:\n{proc.stderr}")
    return proc.stdout


def timed(fn: object, *args: object) -> float:
    # each measurement starts on a settled machine: the data an earlier phase left in the page
    # cache is written back first, not during the next phase (the sandbox hosts share one disk)
    os.sync()
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def write_random(path: Path, mib: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block[:7] + os.urandom(16) + block[23:])


def make_context(ctx: Path, mib: int) -> None:
    """On the example base: three quarters shared by both platforms, a quarter per platform."""
    write_random(ctx / "common" / "data" / "shared.bin", mib * 3 // 4)
    for arch in ("amd64", "arm64"):
        write_random(ctx / arch / "bin" / "payload", mib // 4)
    (ctx / "Kubefile").write_text("FROM kubernetes:v1.19.8\nCOPY common/. .\nCOPY ${ARCH}/. .\n")


def ssh_args(key: str) -> str:
    return f"ssh -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def on_host(key: str, address: str, command: str) -> None:
    subprocess.run([*ssh_args(key).split(), f"root@{address}", command], check=True)


def rsync_baseline(hosts: list[dict[str, str]], trees: dict[str, Path], key: str) -> None:
    procs = [
        subprocess.Popen(
            [
                "rsync",
                "-a",
                "--delete",
                "--exclude=registry/",
                "-e",
                ssh_args(key),
                f"{trees[h['platform']]}/",
                f"root@{h['address']}:/var/lib/bench-rsync/",
            ],
        )
        for h in hosts
    ]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("rsync baseline failed")


def run(env: dict[str, str], hosts: list[dict[str, str]], key: str, cluster: str) -> None:
    nodes = ["-n", ",".join(h["address"] for h in hosts[1:])] if len(hosts) > 1 else []
    sealer(env, "run", IMAGE, "-m", hosts[0]["address"], *nodes, "--pk", key, "--cluster", cluster)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--hosts", type=int, default=8)
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/run.py needs root: it makes a sandbox of hosts")
    subprocess.run(["bash", str(ROOT / "examples" / "prepare.sh")], check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="sealer-bench-run-", dir="/var/tmp"))
    env = {**os.environ, "SEALER_ROOT": str(work / "store")}
    archs = ",".join("amd64" if i % 2 == 0 else "arm64" for i in range(opts.hosts))
    try:
        sealer(env, "build", "--platform", "linux/amd64,linux/arm64", "-t", "kubernetes:v1.19.8",
               str(ROOT / "examples" / "kubernetes-base"))  # fmt: skip
        make_context(work / "ctx", opts.mib)
        sealer(env, "build", "--platform", "linux/amd64,linux/arm64", "-t", IMAGE, str(work / "ctx"))
        sealer(env, "sandbox", "up", SANDBOX, "--hosts", archs)
        rows = [r for r in json.loads(sealer(env, "sandbox", "ls", "--output", "json")) if r["sandbox"] == SANDBOX]
        key = rows[0]["key"]
        hosts = [{"address": r["address"], "platform": r["platform"]} for r in rows]

        # the baseline: the same trees sealer mounts, rsync'ed by hand, every host at once
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
                for p in (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))
            }
            base = timed(rsync_baseline, hosts, trees, key)
        for h in hosts:
            on_host(key, h["address"], "rm -rf /var/lib/bench-rsync")

        first = timed(run, env, hosts, key, "bench")
        again = timed(run, env, hosts, key, "bench")
        sealer(env, "delete", "--all", "--cluster", "bench")

        growth: list[tuple[int, float]] = []
        n = 1
        while n <= len(hosts):
            growth.append((n, timed(run, env, hosts[:n], key, f"bench{n}")))
            sealer(env, "delete", "--all", "--cluster", f"bench{n}")
            n *= 2

        size = opts.mib
        print(f"image: ~{size} MiB rootfs per platform; {len(hosts)} hosts ({archs})")
        print(
            f"first run : {first:7.2f} s   parallel rsync: {base:7.2f} s   ratio {first / base:5.2f}x  (target <= 1.5x)"
        )
        print(f"re-run    : {again:7.2f} s   of the first run:           ratio {again / first:5.2f}x  (target < 0.10x)")
        one = growth[0][1]
        for count, seconds in growth:
            print(
                f"{count} host(s): {seconds:7.2f} s   {seconds / one:5.2f}x the 1-host run (linear would be {count}x)"
            )
    finally:
        subprocess.run([*SEALER, "sandbox", "down", SANDBOX], env=env, check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
