from __future__ import annotations

from pathlib import Path

from sealer.commands._output import info, print_json, table
from sealer.rootfs_cache.registry_tree import check_apart, merge_trees


def merge(out: str, trees: list[str], replace: bool, output: str) -> None:
    # the paths given are checked too: a rootfs given for its registry/ is an input as a whole
    check_apart(Path(out), [Path(t) for t in trees])
    # accept a rootfs (with registry/ inside) as well as a tree itself
    roots = [Path(t) / "registry" if (Path(t) / "registry" / "docker").is_dir() else Path(t) for t in trees]
    served = merge_trees(Path(out), roots, replace)
    if output == "json":
        print_json(served)
        return
    table(["IMAGE", "DIGEST"], [[name, digest] for name, digest in sorted(served.items())])
    info(f"merged {len(roots)} registry trees into {out}")
