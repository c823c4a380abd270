"""Runs sealer commands as forked children of one process that imported sealer once, so a
suite can run hundreds of them, each killed at a chosen point, without paying start-up each
time. One JSON request per line on stdin, one JSON answer per line on stdout:

    {"args": [...], "env": {...}, "kill_after": seconds or null, "out": path, "err": path}
    {"code": exit code or -9 when killed, "checkpoints": how many the child reached}
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback

import sealer.cli
from sealer import faults


def child(request: dict[str, object], report: int) -> None:
    os.environ.update(request["env"])  # type: ignore[arg-type]
    for fd, path in ((1, request["out"]), (2, request["err"])):
        target = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["sealer", *request["args"]]  # type: ignore[misc]
    code = 0
    try:
        sealer.cli.main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # reported as an exit code the test refuses, with what escaped
        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(report, str(faults.reached()).encode())
    os._exit(code)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            child(request, write)
        os.close(write)
        if request.get("kill_after") is not None:
            time.sleep(float(request["kill_after"]))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        reached = os.read(read, 64)
        os.close(read)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        sys.stdout.write(json.dumps({"code": code, "checkpoints": int(reached or 0)}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
