"""Exchange benchmark: save, load, push and pull of a ~1 GiB two-platform image, each beside
the same run's baseline doing the same job on the same bytes: GNU tar for save and load,
skopeo for push and pull (to and from a loopback docker-registry). Prints ratios.
Targets (issue 3): at most 1.0x skopeo on push and pull, at most 1.2x tar on save and load.

    python bench/exchange.py [--mib 1024]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import start_registry

SEALER = [sys.executable, "-m", "sealer"]


def timed(args: list[str], env: dict[str, str] | None = None, shell: bool = False) -> float:
    start = time.perf_counter()
    subprocess.run(args if not shell else " ".join(args), env=env, check=True, shell=shell,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sealer-bench-x-", dir="/var/tmp"))
    reg = start_registry(work / "registry")
    try:
        ctx = work / "ctx"
        per = opts.mib // 4
        for rel in ("common/a.bin", "common/b.bin", "amd64/c.bin", "arm64/c.bin"):
            p = ctx / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "wb") as f:
                for _ in range(per):
                    f.write(os.urandom(1 << 20))
        (ctx / "Kubefile").write_text("FROM scratch\nCOPY common/. .\nCOPY ${ARCH}/. .\n")
        env = {**os.environ, "SEALER_ROOT": str(work / "store")}
        name = f"{reg.address}/bench/img:1"
        subprocess.run([*SEALER, "build", "--platform", "linux/amd64,linux/arm64", "-t", name, str(ctx)],
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        blobs = work / "store" / "blobs"
        save = timed([*SEALER, "save", "-o", str(work / "img.tar"), name], env)
        tar_c = timed(["tar", "-C", str(blobs), "-cf", str(work / "base.tar"), "."])
        env2 = {**os.environ, "SEALER_ROOT": str(work / "store2")}
        load = timed([*SEALER, "load", "-i", str(work / "img.tar")], env2)
        (work / "untar").mkdir()
        tar_x = timed(["tar", "-C", str(work / "untar"), "-xf", str(work / "base.tar")])
        push = timed([*SEALER, "push", name], env)
        skopeo_push = timed(["skopeo", "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false",
                             f"oci:{work / 'store'}:{name}", f"docker://{reg.address}/bench/skopeo:1"])  # fmt: skip
        env3 = {**os.environ, "SEALER_ROOT": str(work / "store3")}
        pull = timed([*SEALER, "pull", name], env3)
        skopeo_pull = timed(["skopeo", "copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false",
                             f"docker://{reg.address}/bench/skopeo:1", f"oci:{work / 'oci'}:x"])  # fmt: skip
        print(f"image: {opts.mib} MiB of layers, 2 platforms (half shared)")
        for label, ours, base, what, target in (
            ("save", save, tar_c, "tar -c", 1.2), ("load", load, tar_x, "tar -x", 1.2),
            ("push", push, skopeo_push, "skopeo", 1.0), ("pull", pull, skopeo_pull, "skopeo", 1.0),
        ):  # fmt: skip
            print(
                f"{label:5}: {ours:6.2f} s   {what:7}: {base:6.2f} s   ratio {ours / base:5.2f}x  (target <= {target}x)"
            )
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
