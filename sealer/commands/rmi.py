from __future__ import annotations

from sealer.commands._output import info, print_json
from sealer.errors import StoreBusyError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.store.image import remove_image
from sealer.store.layout import Store


def run(names: list[str], platforms: str | None, output: str) -> None:
    store = Store.open()
    plats = Platform.parse_list(platforms) if platforms else None
    refs = [Reference.parse(n) for n in names]
    removed: dict[str, list[str]] = {}
    for ref in refs:
        removed[str(ref)] = remove_image(store, ref, plats)
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
