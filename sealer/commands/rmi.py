from __future__ import annotations

from sealer.commands._options import platform_filter
from sealer.commands._output import info, print_json
from sealer.errors import StoreBusyError
from sealer.store.image import remove_images, select
from sealer.store.layout import Store


def run(names: list[str], platforms: str | None, output: str) -> None:
    store = Store.open()
    plats = platform_filter(platforms)
    # every name (or id) and platform is resolved before anything is removed
    selections = [select(store, n, plats) for n in names]
    removed = remove_images(store, selections)
    freed = []
    try:
        freed = store.collect_garbage()
    except StoreBusyError:
        info("another sealer command is running: unused blobs are left for 'sealer prune'")
    if output == "json":
        print_json({"untagged": removed, "deletedBlobs": freed})
        return
    for name, ids in removed.items():
        for i in ids:
            info(f"untagged {name} {i[:12]}")
    info(f"deleted {len(freed)} unused blobs")
