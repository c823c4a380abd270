"""What ``run --check`` and ``join --check`` print: per host, what a run would change."""

from __future__ import annotations

import difflib
import sys
from typing import Any

from sealer.cluster.check_report import Topology, host_check
from sealer.cluster.deploy import RunResult
from sealer.commands._output import human_size, print_json, table

PATHS_SHOWN = 20  # per host in the text report; --output json has the first 100


def host_rows(result: RunResult) -> list[dict[str, Any]]:
    """Per host, what a run would change, from what each host reported in the check."""
    cluster = result.cluster
    topology = Topology(cluster.masters[0].address, cluster.registry_host, frozenset(h.address for h in cluster.hosts),
                        result.customized)  # fmt: skip
    rows = []
    for host in cluster.hosts:
        changed = result.playbook.changed_roles.get(host.address, set())
        check = host_check(host.address, str(result.facts[host.address].platform), result.playbook.reports,
                           topology, changed)  # fmt: skip
        rows.append({"address": host.address, "role": host.role, "hostname": result.facts[host.address].hostname,
                     **check.to_json(), "wouldChange": result.playbook.changed_tasks.get(host.address, []),
                     "idle": check.idle() and not result.playbook.changed_tasks.get(host.address)})  # fmt: skip
    return rows


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
    rows = host_rows(result)
    for row in rows:
        if diff:
            diffs = result.playbook.diffs.get(row["address"], [])
            row["diffs"] = [{"task": task, "diff": _diff_text(d)} for task, d in diffs]
    idle = all([row.pop("idle") for row in rows])
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
        if r["configs"]:
            among = f" (of the first {len(paths)} files named)" if r["rootfs"]["pathsTruncated"] else ""
            out.write(f"{r['address']}: of which the Configs and env make{among}: {', '.join(r['configs'])}\n")
        if r["rootfs"]["script"] == "pending":
            out.write(f"{r['address']}: the image's init script would run\n")
        for task in r["wouldChange"]:
            out.write(f"{r['address']}: would change: {task}\n")
        for d in r.get("diffs", []):
            out.write(f"\n{r['address']}: {d['task']}\n{d['diff']}")
    summary = "nothing to change" if idle else "a run would make the changes above"
    out.write(f"\ncheck of cluster {result.cluster.name} ({result.cluster.image}): {summary}\n")
