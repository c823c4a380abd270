"""sudo's password for a run, handed over without a file, argument or environment variable.

sealer serves it on a Unix socket of its own while the run lasts. Ansible's
become password is a pipe lookup of the collection's ``become-password``, which reads the
socket (ansible-runner would write a password given to it into its artifacts, and records
the environment); rsync's receiving side runs ``sudo -S`` and reads it first on its stream,
where ``become-rsh`` puts it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from sealer.cluster.collection import content_root
from sealer.errors import SealerError


@contextlib.contextmanager
def password_socket(password: str) -> Iterator[dict[str, str]]:
    """Serve ``password`` on a socket (0600, in a private 0700 directory of its own: a run's
    directory can be deeper than a socket's path may be long) while the context lasts; yields
    the extra variables that make Ansible and the roles' rsync fetch it from there."""
    private = Path(tempfile.mkdtemp(prefix="sealer-become-"))
    path = private / "sock"
    server = socket.socket(socket.AF_UNIX)
    old_umask = os.umask(0o177)  # the socket is 0600 from the start
    try:
        server.bind(str(path))
    except OSError as err:
        server.close()
        shutil.rmtree(private, ignore_errors=True)
        raise SealerError(f"cannot serve sudo's password on {path}: {err}") from err
    finally:
        os.umask(old_umask)
    server.listen(64)
    server.settimeout(0.2)  # accept() wakes up to see that the run is over
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(password.encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        files = content_root() / "roles" / "sealer" / "files"
        # run through their interpreters: an installed wheel need not keep the executable bits
        fetch = f"{sys.executable} {files / 'become-password'} {path}"
        yield {
            "ansible_become_password": f"{{{{ lookup('ansible.builtin.pipe', '{fetch}') }}}}",
            "sealer_become_rsh": f"bash {files / 'become-rsh'} {sys.executable} {path}",
        }
    finally:
        done.set()
        thread.join(timeout=5)
        server.close()
        shutil.rmtree(private, ignore_errors=True)
