# sealer.cluster.sync: the controller's rsync to one host (a rootfs, the registry's tree, the
# swarm's tools), returned as data. An action plugin: it runs in the Ansible worker on the
# controller, so a host is reached by rsync alone (no Python started on the host, nor a module's
# interpreter on the controller), and what rsync did comes back typed under the result's `sealer`
# key, which sealer reads (sealer/cluster/results.py) and roles test (`result.sealer.files`).
from __future__ import annotations

import re
import subprocess
from typing import Any

from ansible.plugins.action import ActionBase

REPORT_VERSION = 1
# the files sent, named in the report: the first ones (paths_truncated says whether there were more)
PATHS_KEPT = 100
# rsync --out-format: every item rsync sends, deletes or changes, one line each
ITEM = "sealer-item "
# what the receiving shell (the rootfs role's receive.sh.j2) says on its stderr
EVENT = "sealer-event "
EVENTS = frozenset(("created", "initialised", "stopped", "swarm-removed", "would-create", "would-initialise"))
_STAT = re.compile(
    r"^(Number of regular files transferred|Total transferred file size|Number of deleted files): ([0-9,]+)"
)
_STAT_KEYS = {
    "Number of regular files transferred": "files",
    "Total transferred file size": "bytes",
    "Number of deleted files": "deleted",
}
_SSH_NOISE = re.compile(r"^(Shared )?[Cc]onnection to \S+ closed\.?$")


def rsync_command(args: dict[str, Any], dry_run: bool) -> list[str]:
    sources = args["src"] if isinstance(args["src"], list) else [args["src"]]
    command = ["rsync", "--archive", "--stats", f"--out-format={ITEM}%i %n%L"]
    if args.get("delete", True):
        command += ["--delete-after", "--delay-updates"]
    if args.get("relative"):
        command.append("--relative")
    if args.get("compress"):
        command.append("--compress")
    if args.get("checksum"):  # by content: a file changed in place at the same size and time differs too
        command.append("--checksum")
    if int(args.get("timeout") or 0):
        command.append(f"--timeout={int(args['timeout'])}")
    if dry_run:
        command.append("--dry-run")
    command += [f"--exclude={pattern}" for pattern in args.get("exclude") or []]
    command.append(f"--rsh={args['rsh']}")
    if args.get("rsync_path"):
        command.append(f"--rsync-path={args['rsync_path']}")
    return [*command, *(str(s) for s in sources), f"{args['target']}:{args['dest']}"]


def parse(stdout: str, stderr: str) -> dict[str, Any]:
    """What rsync and the receiving shell said, as numbers, paths and events."""
    report: dict[str, Any] = {"v": REPORT_VERSION, "items": 0, "files": 0, "bytes": 0, "deleted": 0, "paths": []}
    events: dict[str, Any] = {name.replace("-", "_"): False for name in EVENTS}
    stopped: list[str] = []
    sent = 0
    for line in stdout.splitlines():
        if line.startswith(ITEM):
            flags, _, name = line[len(ITEM) :].partition(" ")
            report["items"] += 1
            if flags[:2] in ("<f", ">f"):
                sent += 1
                if len(report["paths"]) < PATHS_KEPT:
                    report["paths"].append(name)
            continue
        match = _STAT.match(line)
        if match:
            report[_STAT_KEYS[match.group(1)]] = int(match.group(2).replace(",", ""))
    report["files"] = max(report["files"], sent)
    report["paths_truncated"] = sent > len(report["paths"])
    for line in stderr.splitlines():
        if not line.startswith(EVENT):
            continue
        name, _, value = line[len(EVENT) :].partition(" ")
        if name == "stopped":
            stopped.append(value.strip())
        elif name in EVENTS:
            events[name.replace("-", "_")] = True
    report.update(events, stopped=stopped)
    return report


def reason(stdout: str, stderr: str, rc: int) -> str:
    for text in (stderr, stdout):
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith((ITEM, EVENT)) and not _SSH_NOISE.match(line)]
        if lines:
            return " | ".join(lines[-3:])[:500]
    return f"rsync exited {rc}"


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible is untyped
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        (
            "src",
            "dest",
            "target",
            "rsh",
            "rsync_path",
            "timeout",
            "exclude",
            "delete",
            "relative",
            "compress",
            "checksum",
            "kind",
        )
    )

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        missing = [key for key in ("src", "dest", "target", "rsh", "kind") if not args.get(key)]
        if missing:
            return {**result, "failed": True, "msg": f"sealer.cluster.sync needs {', '.join(missing)}"}
        dry_run = bool(self._play_context.check_mode)
        command = rsync_command(args, dry_run)
        proc = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
        report = parse(proc.stdout, proc.stderr)
        report.update(kind=str(args["kind"]), rc=proc.returncode, dry_run=dry_run)
        report["error"] = reason(proc.stdout, proc.stderr, proc.returncode) if proc.returncode else ""
        events = any(report[name.replace("-", "_")] for name in EVENTS) or report["stopped"]
        # the command line is not returned: the receiving shell's script makes it long, and every
        # host's result of every run would carry it into the artifacts; rsync's own words are in error
        result.update(changed=bool(report["items"] or events), rc=proc.returncode, sealer=report)
        if proc.returncode:
            result.update(failed=True, msg=report["error"])
        return result
