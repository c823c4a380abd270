"""What ``run --check`` and ``join --check`` print: per host, what a run would change."""

from __future__ import annotations

import difflib
import sys
from typing import Any

from sealer.cluster.deploy import RunResult
from sealer.commands._output import human_size, print_json, table

PATHS_SHOWN = 20  # per host in the text report; --output json has the playbook's first 100


def _count(value: Any) -> int:
    try:
        return int(str(value).replace(",", ""))
    except ValueError:
        return 0


def host_report(result: RunResult, address: str) -> dict[str, Any]:
    """One host's report as the sealer_check role gave it, its numbers as numbers."""
    raw = result.playbook.reports.get(address) or {}
    rootfs, registry = raw.get("rootfs") or {}, raw.get("registry") or {}
    return {
        "platform": str(result.facts[address].platform),
        "rootfs": {
            "files": _count(rootfs.get("files")),
            "bytes": _count(rootfs.get("bytes")),
            "deleted": _count(rootfs.get("deleted")),
            "paths": [str(p) for p in rootfs.get("paths") or []],
            "script": str(rootfs.get("script", "unknown")),
        },
        "registry": {
            "files": _count(registry.get("files")),
            "bytes": _count(registry.get("bytes")),
            "action": str(registry.get("action", "unknown")),
        },
        **{key: str(raw.get(key, "unknown")) for key in ("init", "join", "cmds")},
    }


def nothing_to_do(row: dict[str, Any], changed_tasks: list[str]) -> bool:
    rootfs, registry = row["rootfs"], row["registry"]
    return (
        not changed_tasks
        and rootfs["files"] == 0
        and rootfs["deleted"] == 0
        and rootfs["script"] == "done"
        and registry["files"] == 0
        and registry["action"] == "none"
        and all(row[key] in ("done", "none") for key in ("init", "join", "cmds"))
    )


def _diff_text(diff: dict[str, Any]) -> str:
    before, after = diff.get("before", ""), diff.get("after", "")
    if not isinstance(before, str) or not isinstance(after, str):
        return f"--- {before}\n+++ {after}\n"
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        str(diff.get("before_header", "before")), str(diff.get("after_header", "after")),
    )  # fmt: skip
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def print_check(result: RunResult, output: str, diff: bool) -> None:
    rows = []
    for host in result.cluster.hosts:
        row = {"address": host.address, "role": host.role, "hostname": result.facts[host.address].hostname,
               **host_report(result, host.address),
               "wouldChange": result.playbook.changed_tasks.get(host.address, [])}  # fmt: skip
        if diff:
            diffs = result.playbook.diffs.get(host.address, [])
            row["diffs"] = [{"task": task, "diff": _diff_text(d)} for task, d in diffs]
        rows.append(row)
    idle = all(nothing_to_do(r, r["wouldChange"]) for r in rows)
    if output == "json":
        print_json({"cluster": result.cluster.name, "image": str(result.cluster.image), "check": True,
                    "nothingToChange": idle, "runDir": str(result.playbook.run_dir), "hosts": rows})  # fmt: skip
        return
    table(
        ["HOST", "ROLE", "PLATFORM", "ROOTFS", "REGISTRY", "INIT", "JOIN", "CMDS"],
        [
            [r["address"], r["role"], r["platform"],
             f"{r['rootfs']['files']} files, {human_size(r['rootfs']['bytes'])}"
             + (f", {r['rootfs']['deleted']} deleted" if r["rootfs"]["deleted"] else ""),
             f"{r['registry']['files']} files, {human_size(r['registry']['bytes'])}, {r['registry']['action']}",
             r["init"], r["join"], r["cmds"]]
            for r in rows
        ],
    )  # fmt: skip
    out = sys.stdout
    for r in rows:
        paths = r["rootfs"]["paths"]
        if paths:
            more = r["rootfs"]["files"] - min(len(paths), PATHS_SHOWN)
            out.write(f"\n{r['address']}: the rootfs transfer would send\n")
            out.write("".join(f"  {p}\n" for p in paths[:PATHS_SHOWN]))
            out.write(f"  ... and {more} more\n" if more > 0 else "")
        if r["rootfs"]["script"] == "pending":
            out.write(f"{r['address']}: the image's init script would run\n")
        for task in r["wouldChange"]:
            out.write(f"{r['address']}: would change: {task}\n")
        for d in r.get("diffs", []):
            out.write(f"\n{r['address']}: {d['task']}\n{d['diff']}")
    summary = "nothing to change" if idle else "a run would make the changes above"
    out.write(f"\ncheck of cluster {result.cluster.name} ({result.cluster.image}): {summary}\n")
