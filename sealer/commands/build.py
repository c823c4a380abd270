from __future__ import annotations

from pathlib import Path

from sealer.build.builder import Builder, BuildOptions
from sealer.commands._options import build_platforms, reporter_for
from sealer.commands._output import info, print_json
from sealer.distribution.config import registry_config
from sealer.oci.reference import Reference
from sealer.store.layout import Store


def run(
    context: str,
    kubefile: str | None,
    tag: str,
    platforms: str | None,
    build_args: dict[str, str],
    no_cache: bool,
    output: str,
    image_lists: tuple[str, ...] = (),
    ignore_images: tuple[str, ...] = (),
    allow_missing_images: bool = False,
) -> None:
    ctx = Path(context)
    store = Store.open()
    opts = BuildOptions(
        kubefile=Path(kubefile) if kubefile else ctx / "Kubefile",
        context=ctx,
        tag=Reference.parse_target(tag),
        platforms=build_platforms(platforms),
        build_args=build_args,
        no_cache=no_cache,
        image_lists=[Path(p) for p in image_lists],
        ignore_images=list(ignore_images),
        allow_missing_images=allow_missing_images,
        registry_config=registry_config(store),
    )
    result = Builder(store, reporter_for(output)).build(opts)
    if output == "json":
        print_json(
            {
                "name": result.name,
                "manifests": [{"id": i.id, "platform": i.platform.to_oci()} for i in result.images],
                "layersWritten": result.layers_written,
                "layersCached": result.layers_cached,
                "blobsFetched": result.blobs_fetched,
            }
        )
        return
    for img in result.images:
        info(f"{result.name} {img.platform}: {img.id[:12]}")
    info(f"built {result.name}: {result.layers_written} layers written, {result.layers_cached} from cache")
