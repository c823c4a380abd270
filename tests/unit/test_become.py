"""sudo's password for a run: served on a socket of sealer's own only while the run lasts."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sealer.cluster.become import password_socket
from sealer.cluster.collection import content_root

FILES = content_root() / "roles" / "sealer" / "files"


def test_become_password_reads_the_socket_only_while_it_is_served() -> None:
    with password_socket("Canary-Sudo-Pa55") as extravars:
        sock = Path(extravars["sealer_become_rsh"].split()[-1])
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert "Canary" not in repr(extravars)
        for _ in range(2):  # every task and every transfer asks again
            out = subprocess.run([sys.executable, str(FILES / "become-password"), str(sock)],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            assert out == "Canary-Sudo-Pa55\n"
    assert not sock.exists() and not sock.parent.exists()
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, str(FILES / "become-password"), str(sock)], capture_output=True, check=True)


def test_become_rsh_puts_the_password_first_then_the_stream_and_ends_with_its_command() -> None:
    with password_socket("Canary-Sudo-Pa55") as extravars:
        # the command stands in for ssh: it ends after reading one line of rsync's stream, while
        # the stream stays open (rsync waits for its --rsh to end before it closes it)
        script = 'read -r pw; read -r first; echo "$pw|$first"'
        rsh = [
            "bash",
            str(FILES / "become-rsh"),
            sys.executable,
            extravars["sealer_become_rsh"].split()[-1],
            "sh",
            "-c",
            script,
        ]
        feeder = subprocess.Popen(["sh", "-c", "echo protocol-data; sleep 30"], stdout=subprocess.PIPE)
        try:
            out = subprocess.run(rsh, stdin=feeder.stdout, capture_output=True, text=True, timeout=10, check=True)
        finally:
            feeder.kill()
            feeder.wait()
    assert out.stdout == "Canary-Sudo-Pa55|protocol-data\n"
