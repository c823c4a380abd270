from __future__ import annotations

from typing import Any

from sealer.commands._output import print_json, print_yaml
from sealer.errors import AmbiguousImageError, ImageNotFoundError, InvalidReferenceError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.store.image import CLUSTERFILE_ANNOTATION, Image, PlatformImage, find_by_id, get_image
from sealer.store.layout import Store


def manifests_list(image: Image) -> dict[str, Any]:
    """The manifests list of docs/design/multi-arch.md: ``{name: {manifests: [{id, created, size, platform}]}}``."""
    return {
        image.name: {
            "manifests": [
                {"id": p.id, "created": p.config.created, "size": p.size, "platform": p.platform.to_oci()}
                for p in image.platforms
            ]
        }
    }


def clusterfile(name: str) -> str:
    return (
        "apiVersion: sealer.cloud/v2\n"
        "kind: Cluster\n"
        "metadata:\n"
        "  creationTimestamp: null\n"
        "  name: my-cluster\n"
        "spec:\n"
        f"  image: {name}\n"
        "  ssh:\n"
        '    port: "22"\n'
        "    user: root\n"
        "status: {}\n"
    )


def image_yaml(name: str, image: PlatformImage) -> dict[str, Any]:
    """The per-platform image YAML of docs/design/multi-arch.md."""
    cfg = image.config
    image_config: dict[str, Any] = {"cmd": {}}
    if cfg.cmd_parent:
        image_config["cmd"]["parent"] = list(cfg.cmd_parent)
    image_config["cmd"]["current"] = list(cfg.cmd_current)
    for key, value in (("env", cfg.env), ("labels", cfg.labels), ("args", cfg.build_args)):
        if value:
            image_config[key] = dict(value)
    if cfg.images:
        image_config["images"] = list(cfg.images)
    if cfg.warnings:
        image_config["warnings"] = list(cfg.warnings)
    return {
        "kind": "Image",
        "metadata": {
            "annotations": {CLUSTERFILE_ANNOTATION: clusterfile(name)},
            "creationTimestamp": None,
            "name": name,
        },
        "spec": {
            "id": image.id,
            "image_config": image_config,
            "layers": [layer.to_json() for layer in cfg.layers],
            "platform": image.platform.to_oci(),
            "sealer_version": cfg.sealer_version,
        },
        "status": {},
    }


def run(target: str, platform: str | None) -> None:
    store = Store.open()
    image = None
    try:
        ref = Reference.parse(target)
        image = get_image(store, ref)
    except (InvalidReferenceError, ImageNotFoundError):
        image = None
    if image is not None:
        if platform:
            print_yaml(image_yaml(image.name, image.for_platform(Platform.parse(platform))))
        else:
            print_json(manifests_list(image))
        return
    try:
        name, plat = find_by_id(store, target)
    except AmbiguousImageError:
        raise
    except ImageNotFoundError as err:
        raise ImageNotFoundError(f"image {target} not found: no such name or id") from err
    if platform and plat.platform != Platform.parse(platform):
        raise ImageNotFoundError(f"image id {target} is {plat.platform}, not {platform}")
    print_yaml(image_yaml(name, plat))
