from __future__ import annotations

from sealer.commands._output import info
from sealer.oci.reference import Reference
from sealer.store.image import select, tag_image
from sealer.store.layout import Store


def run(source: str, target: str) -> None:
    store = Store.open()
    name = Reference.parse_target(target)
    selection = select(store, source)
    tag_image(store, selection, name)
    if selection.platforms is not None:
        info(f"tagged {name} ({', '.join(str(p) for p in selection.platforms)} of {selection.image.name})")
