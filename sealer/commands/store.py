"""fsck and prune: the local store's integrity and its garbage."""

from __future__ import annotations

from sealer.commands._output import info, print_json
from sealer.errors import StoreError
from sealer.store.layout import Store


def fsck(output: str) -> None:
    checked, problems = Store.open().fsck()
    if output == "json":
        print_json({"blobsChecked": checked, "problems": problems})
    else:
        for p in problems:
            info(p)
        info(f"checked {checked} blobs: {len(problems)} problem(s)")
    if problems:
        raise StoreError(f"the store has {len(problems)} problem(s)")


def prune(output: str) -> None:
    removed = Store.open().collect_garbage(blocking=True)
    if output == "json":
        print_json({"deletedBlobs": removed})
    else:
        info(f"deleted {len(removed)} unused blobs")
