from __future__ import annotations

from sealer.commands._output import human_size, print_json, table
from sealer.store.image import list_images
from sealer.store.layout import Store


def run(output: str) -> None:
    pairs = [(image.name, plat) for image in list_images(Store.open()) for plat in image.platforms]
    if output == "json":
        print_json(
            [
                {
                    "name": name,
                    "id": plat.id,
                    "platform": plat.platform.to_oci(),
                    "created": plat.config.created,
                    "size": plat.size,
                }
                for name, plat in pairs
            ]
        )
        return
    rows = [
        [name, plat.id[:12], str(plat.platform), plat.config.created[:19].replace("T", " "), human_size(plat.size)]
        for name, plat in pairs
    ]
    table(["NAME", "ID", "PLATFORM", "CREATED", "SIZE"], rows)
