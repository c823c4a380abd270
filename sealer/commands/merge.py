"""sealer merge: one image from several, per platform; inputs missing here are pulled."""

from __future__ import annotations

from sealer.build.merge import merge as merge_images
from sealer.commands._options import build_platforms, reporter_for
from sealer.commands._output import info, print_json
from sealer.distribution import transfer
from sealer.distribution.config import registry_config
from sealer.errors import ImageNotFoundError
from sealer.oci.reference import Reference
from sealer.store.image import get_image
from sealer.store.layout import Store


def merge(names: list[str], tag: str, platforms: str | None, insecure: bool, output: str) -> None:
    store = Store.open()
    plats = build_platforms(platforms)
    target = Reference.parse_target(tag)
    config = registry_config(store)
    images = []
    for name in names:
        ref = Reference.parse(name)
        try:
            images.append(get_image(store, ref))
        except ImageNotFoundError:
            if insecure:
                config.insecure.add(transfer.remote(ref, config)[0])
            transfer.pull(store, ref, plats, config, reporter_for(output))
            images.append(get_image(store, ref))
    results = merge_images(store, images, target, plats)
    if output == "json":
        print_json({"name": tag, "manifests": [{"id": r.id, "platform": r.platform.to_oci()} for r in results]})
    else:
        for r in results:
            info(f"{tag} {r.platform}: {r.id[:12]}")
