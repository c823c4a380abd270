from __future__ import annotations

from sealer.image import tag_image
from sealer.reference import Reference
from sealer.store import Store


def run(source: str, target: str) -> None:
    tag_image(Store.open(), Reference.parse(source), Reference.parse(target))
