# sealer.cluster.host_report: a shell script run on the host as ansible.builtin.raw runs one (one
# round trip, through become, no Python on the host: on a small or emulated host a Python start
# costs seconds), whose last line of output is one JSON object, versioned. That object comes back
# typed under the result's `sealer` key, which sealer reads (sealer/cluster/results.py) and roles
# test (`result.sealer.running`); a script that ends without it fails the task. With `document:
# true` the script's whole output is one JSON document of a program (kubectl get -o json, say),
# returned as it is under `sealer.document`.
from __future__ import annotations

import json
import re
from typing import Any

from ansible.plugins.action import ActionBase

REPORT_VERSION = 1
_SSH_NOISE = re.compile(r"^(Shared )?[Cc]onnection to \S+ closed\.?$")


def last_lines(*texts: str) -> str:
    for text in texts:
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith("{") and not _SSH_NOISE.match(line)]
        if lines:
            return " | ".join(lines[-3:])[:500]
    return ""


def report_of(stdout: str) -> dict[str, Any] | None:
    """The script's report: its last non-empty line, a JSON object of this version."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        report = json.loads(lines[-1])
    except ValueError:
        return None
    if not isinstance(report, dict) or report.get("v") != REPORT_VERSION:
        return None
    return report


def document_of(stdout: str) -> dict[str, Any] | None:
    """A program's whole output as one JSON document, as a report of this version."""
    text = "\n".join(line for line in stdout.splitlines() if not _SSH_NOISE.match(line.strip()))
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return {"v": REPORT_VERSION, "document": data}


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible is untyped
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("script", "kind", "executable", "document"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = self._task.args
        if not args.get("script") or not args.get("kind"):
            return {**result, "failed": True, "msg": "sealer.cluster.host_report needs script and kind"}
        done = self._low_level_execute_command(str(args["script"]), executable=args.get("executable") or False)
        rc = int(done.get("rc", 1))
        stdout, stderr = str(done.get("stdout") or ""), str(done.get("stderr") or "")
        document = bool(args.get("document"))
        report = document_of(stdout) if document else report_of(stdout)
        result.update(rc=rc, stderr=stderr)
        if rc != 0:
            return {**result, "failed": True, "msg": last_lines(stderr, stdout) or f"exit {rc}"}
        if document and report is None:
            return {**result, "failed": True, "msg": "the host's program did not print one JSON document"}
        if report is None:
            tail = last_lines(stdout, stderr)
            msg = f"the host's script ended without its report (a JSON line of version {REPORT_VERSION})"
            return {**result, "failed": True, "msg": msg + (f": {tail}" if tail else "")}
        changed = bool(report.pop("changed", False))
        result.update(changed=changed, sealer={**report, "kind": str(args["kind"])})
        return result
