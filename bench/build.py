"""Build benchmark: a 1 GiB two-platform context (base plus app), against GNU tar | sha256sum.

Prints the cold build time, the unchanged rebuild time and the store's bytes on disk, each
beside this run's baseline, as ratios. Targets (issue 2): cold build <= 1.5x the baseline,
rebuild < 5% of the cold build, store <= 1.1x the unique bytes.

    python bench/build.py [--mib 1024] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEALER = [sys.executable, "-m", "sealer"]


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(chunk[:7] + os.urandom(16) + chunk[23:])  # distinct blocks, cheap to make


def make_context(root: Path, total_mib: int) -> int:
    """Base: shared rootfs and a per-arch part; app: shared data and a per-arch binary."""
    mib = 1 << 20
    plan = {
        "base/rootfs/usr/big.bin": total_mib * 40 // 100,
        "base/rootfs/etc/medium.bin": total_mib * 10 // 100,
        "base/amd64/bin/kubelet": total_mib * 10 // 100,
        "base/arm64/bin/kubelet": total_mib * 10 // 100,
        "app/charts/data.bin": total_mib * 20 // 100,
        "app/amd64/helm": total_mib * 5 // 100,
        "app/arm64/helm": total_mib * 5 // 100,
    }
    for rel, size in plan.items():
        write_random(root / rel, size * mib)
    for i in range(2000):  # many small files too, as a real rootfs has
        p = root / "base" / "rootfs" / "etc" / "small" / f"f{i:04}.conf"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(512))
    (root / "base" / "Kubefile").write_text("FROM scratch\nCOPY rootfs/. .\nCOPY ${ARCH}/. .\n")
    (root / "app" / "Kubefile").write_text(
        "FROM bench-base:1\nCOPY charts .\nCOPY ${ARCH}/helm bin\nCMD helm install x charts/data\n"
    )
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def baseline(ctx: Path) -> float:
    start = time.perf_counter()
    subprocess.run(f"tar -C {ctx} -cf - base app | sha256sum >/dev/null", shell=True, check=True)
    return time.perf_counter() - start


def drop_caches() -> None:
    subprocess.run(["sync"], check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--keep", action="store_true")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sealer-bench-", dir="/var/tmp"))
    try:
        ctx, store = work / "ctx", work / "store"
        unique = make_context(ctx, opts.mib)
        env = {**os.environ, "SEALER_ROOT": str(store)}
        plats = ["--platform", "linux/amd64,linux/arm64"]
        build = [
            [*SEALER, "build", *plats, "-t", "bench-base:1", str(ctx / "base")],
            [*SEALER, "build", *plats, "-t", "bench-app:1", str(ctx / "app")],
        ]
        drop_caches()
        base_t = min(baseline(ctx) for _ in range(2))
        cold = sum(timed(b, env) for b in build)
        rebuild = sum(timed(b, env) for b in build)
        stored = sum(f.stat().st_size for f in (store / "blobs").rglob("*") if f.is_file())
        print(f"context: {unique / 2**20:.0f} MiB unique bytes, 2 platforms, base + app")
        print(f"baseline  tar | sha256sum : {base_t:7.2f} s")
        print(f"cold build                : {cold:7.2f} s   ratio {cold / base_t:5.2f}x baseline  (target <= 1.5x)")
        print(f"unchanged rebuild         : {rebuild:7.2f} s   ratio {rebuild / cold:6.1%} of cold   (target < 5%)")
        print(
            f"store blobs on disk       : {stored / 2**20:7.0f} MiB ratio {stored / unique:5.2f}x unique"
            " (target <= 1.1x)"
        )
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
