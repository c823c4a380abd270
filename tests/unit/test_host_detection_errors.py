"""A host that accepts the connection and says nothing is named in one line, with none of
paramiko's own tracebacks on stderr."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path


def test_a_host_that_closes_the_connection_is_one_line(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]

    def answer() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            conn.close()  # no SSH banner

    threading.Thread(target=answer, daemon=True).start()
    script = textwrap.dedent(f"""
        from pathlib import Path
        from sealer.cluster.clusterfile import Host, SSHConfig
        from sealer.cluster.hosts import KnownHosts, detect
        from sealer.errors import HostsError
        try:
            detect([Host("127.0.0.1", "master", SSHConfig(port={port}, pk="/nonexistent"))],
                   KnownHosts(Path({str(tmp_path / "known_hosts")!r})))
        except HostsError as err:
            print(err)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    server.close()
    assert proc.stdout.startswith("127.0.0.1: ") and proc.stdout.count("\n") == 1, proc.stdout
    assert proc.stderr == "", proc.stderr
