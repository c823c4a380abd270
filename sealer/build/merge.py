"""``sealer merge``: several app images on one base, as one image, per platform.

Per platform: the layers of the first image, then those of the next not already present,
and so on; the CMD lists concatenated in order with exact duplicates dropped. Images built on
different bases are refused: their layers could not be stacked meaningfully.
"""

from __future__ import annotations

from sealer.errors import MergeError, PlatformNotFoundError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.store.image import (
    Image,
    ImageConfig,
    PlatformImage,
    now_rfc3339,
    store_key,
    write_index,
    write_platform_image,
)
from sealer.store.layout import Store


def merge_platform(images: list[Image], platform: Platform) -> ImageConfig:
    parts: list[PlatformImage] = []
    for image in images:
        try:
            parts.append(image.for_platform(platform))
        except PlatformNotFoundError as err:
            raise MergeError(f"cannot merge: image {image.name} has no platform {platform}") from err
    first = parts[0].config
    base = [la.digest for la in first.layers[: first.base_layers]]
    for image, part in zip(images[1:], parts[1:], strict=True):
        theirs = [la.digest for la in part.config.layers[: part.config.base_layers]]
        if theirs != base:
            raise MergeError(
                f"cannot merge: {images[0].name} and {image.name} are not built on the same base layers ({platform})"
            )
    merged = ImageConfig(
        platform=platform,
        layers=list(first.layers),
        cmd_parent=list(first.cmd_parent),
        base_layers=first.base_layers,
    )
    seen = {la.digest for la in merged.layers}
    for part in parts:
        cfg = part.config
        for layer in cfg.layers:
            if layer.digest not in seen:
                merged.layers.append(layer)
                seen.add(layer.digest)
        for cmd in cfg.cmd_current:
            if cmd not in merged.cmd_current:
                merged.cmd_current.append(cmd)
        merged.env.update(cfg.env)
        merged.labels.update(cfg.labels)
        merged.images += [i for i in cfg.images if i not in merged.images]
        merged.warnings += [w for w in cfg.warnings if w not in merged.warnings]
    merged.created = now_rfc3339()
    return merged


def merge(store: Store, images: list[Image], target: Reference, platforms: list[Platform]) -> list[PlatformImage]:
    if len(images) < 2:
        raise MergeError("merge needs at least two images")
    with store.writing():
        results = [write_platform_image(store, merge_platform(images, p)) for p in platforms]
        index = write_index(store, results)
        key = store_key(target)
        store.update_names(lambda names: names.__setitem__(key, index))
    return results
