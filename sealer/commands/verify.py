"""verify: every host's rootfs compared by content with the cluster's image, nothing changed.

A check of the cluster (the run playbook in Ansible's check mode) whose rootfs rsync compares
every file's checksum (``--checksum``) instead of its size and time: a file changed in place at
the same size with its time put back is found too. ``sealer run --verify`` repairs what this
reports."""

from __future__ import annotations

import sys
from typing import Any

from sealer.cluster.deploy import RunResult, run_cluster
from sealer.cluster.options import RunOptions
from sealer.cluster.state import load_state, resolve_name
from sealer.commands._options import reporter_for
from sealer.commands._output import become_password_source, info, print_json, table
from sealer.errors import DriftError
from sealer.store.layout import Store


def drift_rows(result: RunResult) -> list[dict[str, Any]]:
    """Per host, what its rootfs transfer sent (or, in a check, would send) and delete: by
    content when the run verified."""
    rows = []
    for host in result.cluster.hosts:
        sync = result.playbook.reports.get(host.address, "rootfs")
        files, deleted = (sync.number("files"), sync.number("deleted")) if sync is not None else (0, 0)
        paths = sync.strings("paths") if sync is not None else []
        rows.append({"address": host.address, "role": host.role, "differ": files, "extra": deleted, "paths": paths})
    return rows


def print_paths(rows: list[dict[str, Any]], said: str) -> None:
    """Each host's files, one line each (the first 100 rsync named, then how many more)."""
    out = sys.stdout
    for row in rows:
        out.write("".join(f"{row['address']}: {said} {path}\n" for path in row["paths"]))
        more = row["differ"] - len(row["paths"])
        out.write(f"{row['address']}: ... and {more} more\n" if more > 0 else "")
        out.write(f"{row['address']}: {row['extra']} files not in the image removed\n" if row["extra"] else "")


def verify(name: str | None, strict_host_keys: bool, output: str) -> None:
    store = Store.open()
    cluster = load_state(store, resolve_name(store, name))
    options = RunOptions(strict_host_keys, become_password_source(), check=True, verify=True)
    result = run_cluster(store, cluster, reporter_for(output), options)
    rows = drift_rows(result)
    differ = [r for r in rows if r["differ"] or r["extra"]]
    if output == "json":
        print_json({"cluster": cluster.name, "image": str(cluster.image), "differs": bool(differ),
                    "runDir": str(result.playbook.run_dir), "hosts": rows})  # fmt: skip
    else:
        table(["HOST", "ROLE", "DIFFERING FILES", "FILES NOT IN THE IMAGE"],
              [[r["address"], r["role"], str(r["differ"]), str(r["extra"])] for r in rows])  # fmt: skip
        print_paths(rows, "differs:")
    if differ:
        raise DriftError(
            f"cluster {cluster.name}: the rootfs differs from {cluster.image} on "
            f"{', '.join(r['address'] for r in differ)} (sealer run --verify repairs it)"
        )
    if output != "json":
        info(f"cluster {cluster.name}: every host's rootfs is the image's ({cluster.image})")
