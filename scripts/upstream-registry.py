"""A local stand-in for the public registries the example's container images come from.

The example's manifests and chart name real images (docker.io/kubernetesui/dashboard:v2.5.1,
docker.io/bitnami/mysql:8.0.28-debian-10-r23). This machine cannot reach docker.io, so the demo
and the tests run Debian's docker-registry on loopback, seeded with small multi-arch
**stand-in** images under those names (one real tar layer per architecture, whose content
names the image and the architecture), and build with SEALER_REGISTRY_MIRRORS=docker.io=ADDR,
the way an air-gapped site points its tools at a mirror.

    python scripts/upstream-registry.py start DIR   # prints the address; idempotent
    python scripts/upstream-registry.py stop DIR
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

STAND_INS = {
    "kubernetesui/dashboard:v2.5.1": "dashboard",
    "bitnami/mysql:8.0.28-debian-10-r23": "mysqld",
}
PLATFORMS = "linux/amd64,linux/arm64"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(address: str) -> bool:
    try:
        urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def start(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    addr_file = root / "address"
    if addr_file.exists() and _up(addr_file.read_text().strip()):
        return addr_file.read_text().strip()
    address = f"127.0.0.1:{_free_port()}"
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {address}\n  secret: sealer-upstream\n"
    )
    with open(root / "log", "ab") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    (root / "pid").write_text(str(proc.pid))
    for _ in range(100):
        if _up(address):
            break
        time.sleep(0.05)
    else:
        raise SystemExit(f"docker-registry did not start: {(root / 'log').read_text()}")
    addr_file.write_text(address)
    seed(root, address)
    return address


def seed(root: Path, address: str) -> None:
    env = {**os.environ, "SEALER_ROOT": str(root / "store")}
    for name, program in STAND_INS.items():
        ctx = root / "contexts" / program
        for arch in ("amd64", "arm64"):
            release = ctx / arch / "etc" / f"{program}-release"
            release.parent.mkdir(parents=True, exist_ok=True)
            release.write_text(f"{name} stand-in for linux/{arch}: not the real image, for sealer's demo and tests\n")
        (ctx / "Kubefile").write_text("FROM scratch\nCOPY ${ARCH}/. .\n")
        target = f"{address}/{name}"
        for args in (["build", "--platform", PLATFORMS, "-t", target, str(ctx)], ["push", target]):
            subprocess.run([sys.executable, "-m", "sealer", *args], env=env, check=True, capture_output=True)


def stop(root: Path) -> None:
    pid_file = root / "pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()
    (root / "address").unlink(missing_ok=True)


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        raise SystemExit(__doc__)
    root = Path(sys.argv[2])
    if sys.argv[1] == "start":
        print(start(root))
    else:
        stop(root)


if __name__ == "__main__":
    main()
