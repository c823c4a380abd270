from __future__ import annotations

from pathlib import Path

from sealer.build import Builder, BuildOptions
from sealer.commands._output import RichReporter, info, print_json
from sealer.platform import Platform
from sealer.reference import Reference
from sealer.store import Store


def run(
    context: str,
    kubefile: str | None,
    tag: str,
    platforms: str | None,
    build_args: dict[str, str],
    no_cache: bool,
    output: str,
) -> None:
    ctx = Path(context)
    opts = BuildOptions(
        kubefile=Path(kubefile) if kubefile else ctx / "Kubefile",
        context=ctx,
        tag=Reference.parse(tag),
        platforms=Platform.parse_list(platforms) if platforms else [Platform.host()],
        build_args=build_args,
        no_cache=no_cache,
    )
    result = Builder(Store.open(), RichReporter(quiet=output == "json")).build(opts)
    if output == "json":
        print_json(
            {
                "name": result.name,
                "manifests": [{"id": i.id, "platform": i.platform.to_oci()} for i in result.images],
                "layersWritten": result.layers_written,
                "layersCached": result.layers_cached,
            }
        )
        return
    for img in result.images:
        info(f"{result.name} {img.platform}: {img.id[:12]}")
    info(f"built {result.name}: {result.layers_written} layers written, {result.layers_cached} from cache")
