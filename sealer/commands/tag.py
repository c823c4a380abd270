from __future__ import annotations

from sealer.oci.reference import Reference
from sealer.store.image import tag_image
from sealer.store.layout import Store


def run(source: str, target: str) -> None:
    tag_image(Store.open(), Reference.parse(source), Reference.parse(target))
