"""``sealer build``; and its unchanged rebuild, answered from the build's memo before click loads.

An unchanged rebuild reads no file and writes nothing, so what it costs is starting up: click,
the builder, the Kubefile parser and the store's write path were most of it. :func:`replay`
is called by ``sealer/__main__.py`` for ``sealer build`` before anything else: when the
arguments are plain (below) and the memo of the last build with them (``sealer.build.memo``)
still holds, it prints what that build would print and sealer exits; otherwise the command line
runs as always. The modules the full build needs are imported inside :func:`run`.
"""

from __future__ import annotations

import os
import sys

from sealer import __version__
from sealer.build import memo
from sealer.commands._output import info, print_json
from sealer.store.root import root_dir

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: every build starts here
if TYPE_CHECKING:
    from typing import Any

# The options replay understands, each given once, as "--opt VALUE" or "--opt=VALUE"; any
# other argument (--no-cache, --image-list, -h, a value starting with "-", ...) goes to click.
_SINGLE = {"-t": "tag", "--tag": "tag", "-f": "kubefile", "--file": "kubefile", "--platform": "platforms",
           "-o": "output", "--output": "output"}  # fmt: skip
_MULTIPLE = {"--build-arg": "build_args", "--ignore-image": "ignore_images"}
_FLAGS = {"--allow-missing-images": "allow_missing_images"}


def invocation(
    context: str,
    kubefile: str | None,
    tag: str,
    platforms: str | None,
    build_args: dict[str, str],
    ignore_images: tuple[str, ...] | list[str],
    allow_missing_images: bool,
) -> dict[str, Any]:
    """What a memo is kept under: the arguments with paths made absolute, and this sealer."""
    return {
        "sealer": __version__,
        "machine": os.uname().machine,  # the default platform is this machine's
        "context": os.path.realpath(context),
        "kubefile": os.path.abspath(kubefile or os.path.join(context, "Kubefile")),
        "tag": tag,
        "platforms": platforms,
        "buildArgs": build_args,
        "ignoreImages": list(ignore_images),
        "allowMissingImages": allow_missing_images,
    }


def _parse(argv: list[str]) -> dict[str, Any] | None:
    """``sealer build`` arguments as click would take them, or None for anything but plain ones."""
    values: dict[str, Any] = {"context": None, "build_args": [], "ignore_images": [], "allow_missing_images": False}
    args = iter(argv)
    for arg in args:
        option, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if option in _SINGLE or option in _MULTIPLE:
            if not eq:
                value = next(args, "")
            if not value or value.startswith("-"):
                return None
            if option in _MULTIPLE:
                values[_MULTIPLE[option]].append(value)
            elif _SINGLE[option] in values:
                return None
            else:
                values[_SINGLE[option]] = value
        elif arg in _FLAGS:
            values[_FLAGS[arg]] = True
        elif arg.startswith("-") or values["context"] is not None:
            return None
        else:
            values["context"] = arg
    if "tag" not in values or values.get("output", "text") not in ("text", "json"):
        return None
    build_args: dict[str, str] = {}
    for item in values["build_args"]:
        key, eq, value = item.partition("=")
        if not eq or not key:
            return None
        build_args[key] = value
    values["build_args"] = build_args
    return values


def replay(argv: list[str]) -> bool:
    """Answer ``sealer build ARGV`` from its memo when nothing it read has changed since; False
    when the build has to run."""
    values = _parse(argv)
    if values is None:
        return False
    key = invocation(values["context"] or ".", values.get("kubefile"), values["tag"], values.get("platforms"),
                     values["build_args"], values["ignore_images"], values["allow_missing_images"])  # fmt: skip
    report = memo.replay(root_dir(), key)
    if report is None:
        return False
    if sys.stderr.isatty() and values.get("output") != "json":
        info("· nothing the last build read has changed")
    _report(report, values.get("output", "text"))
    return True


def _report(report: dict[str, Any], output: str) -> None:
    if output == "json":
        print_json({**report, "manifests": [{"id": m["id"], "platform": m["platform"]} for m in report["manifests"]]})
        return
    for image in report["manifests"]:
        info(f"{report['name']} {image['shown']}: {image['id'][:12]}")
    info(f"built {report['name']}: {report['layersWritten']} layers written, {report['layersCached']} from cache")


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
    from pathlib import Path

    from sealer.build.builder import Builder, BuildOptions
    from sealer.commands._options import build_platforms, reporter_for
    from sealer.distribution.config import registry_config
    from sealer.oci.reference import Reference
    from sealer.store.layout import Store

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
    report = {
        "name": result.name,
        "manifests": [{"id": i.id, "platform": i.platform.to_oci(), "shown": str(i.platform)} for i in result.images],
        "layersWritten": result.layers_written,
        "layersCached": result.layers_cached,
        "blobsFetched": result.blobs_fetched,
    }
    if result.inputs is not None:
        # what the next build with these arguments reports if nothing it reads has changed
        again = {**report, "layersWritten": 0, "layersCached": result.steps, "blobsFetched": 0}
        key = invocation(context, kubefile, tag, platforms, build_args, ignore_images, allow_missing_images)
        kept = memo.encode(key, result.inputs, result.bases, result.name, result.digest, again)
        memo.save(str(store.root), str(store.tmp), tag, kept)
    _report(report, output)
