"""Hostile use of the cluster commands (issue 30): secrets in the process, oversized input,
messages for wrong combinations, lookups in inventories, paths an inventory points elsewhere.

Every case runs the real ``sealer`` on the controller and needs no host: each is refused, or
observed, before sealer reaches one.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

from tests.helpers import SEALER, Sealer


def test_passwords_are_not_in_proc_environ_of_a_running_sealer(tmp_path: Path) -> None:
    """sealer blocks opening a FIFO as its Clusterfile; meanwhile its /proc/PID/environ is read."""
    fifo = tmp_path / "Clusterfile"
    os.mkfifo(fifo)
    canaries = {"SEALER_BECOME_PASSWORD": "become-canary-7f3a", "SEALER_SSH_PASSWORD": "ssh-canary-91c2"}
    env = {**Sealer(tmp_path / "store").env(), **canaries}
    proc = subprocess.Popen([*SEALER, "run", "-f", str(fifo)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # a FIFO opens for writing without blocking only once a reader has it open
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as err:
                assert err.errno == errno.ENXIO
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        os.write(fd, b"apiVersion: nope\n")
        os.close(fd)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, err
    assert b"SEALER_ROOT=" in environ  # the block was read, and it is sealer's
    for name, value in canaries.items():
        assert value.encode() not in environ
        assert name.encode() not in environ
